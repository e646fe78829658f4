"""Errors that reach the user as one clear line (CLI exit code 2)."""

from __future__ import annotations


class SddError(Exception):
    """Bad input or missing resource, reported before any work starts."""


class ConfigError(SddError, ValueError):
    """A configuration field holds a value that is not allowed."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={value!r} is not allowed: {allowed}")


class DatasetMissing(SddError, FileNotFoundError):
    """A data set is not on disk and cannot be downloaded."""
