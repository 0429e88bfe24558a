"""The package version, the single source for packaging and the User-Agent."""

__version__ = "0.1.0"
