"""The package version, recorded in every run directory's meta.json."""

__version__ = "0.1.0"
