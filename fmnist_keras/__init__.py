"""fmnist-keras: the article's Fashion-MNIST CNN, trained in Keras 3 and shipped to the edge, verified."""

from importlib import metadata

# First, before any module can import TensorFlow: whether its oneDNN kernels run.
from fmnist_keras.system import onednn  # noqa: F401

try:  # one place for the version: pyproject.toml
    __version__ = metadata.version("fmnist-keras")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
