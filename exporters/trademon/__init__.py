"""trademon: monitoring for automated trading on Interactive Brokers.

The core install is the instrumentation library (`trademon.instrument`); each service of the
stack comes with its extra (`pip install 'trademon[all]'`). Importing the package changes no
global state.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one version is pyproject.toml's
    __version__ = version("trademon")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
