"""fmnist-keras: the article's Fashion-MNIST CNN, trained in Keras 3 and shipped to the edge, verified."""

from importlib import metadata

try:  # one place for the version: pyproject.toml
    __version__ = metadata.version("fmnist-keras")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
