"""fmnist-keras: the article's Fashion-MNIST CNN, trained in Keras 3 and shipped to the edge, verified."""

__version__ = "0.1.0"
