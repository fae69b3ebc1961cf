"""herbdesk: run and monitor Darwin Core extraction from herbarium specimen images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("herbdesk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
