"""Errors that reach the user as one clear line (CLI exit code 2)."""

from __future__ import annotations


class SddError(Exception):
    """Bad input or missing resource, reported before any work starts."""


SHOWN_CHARS = 120  # a value longer than this (a 20,000-seed list) is shown cut, with its full length


def shown(value: object) -> str:
    """`repr(value)`, cut to `SHOWN_CHARS` so one bad value never floods the terminal."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    size = f"{len(value)} items" if isinstance(value, (list, tuple, dict, set)) else f"{len(text)} characters"
    return f"{text[:SHOWN_CHARS - 20]}... ({size})"


class ConfigError(SddError, ValueError):
    """A configuration field holds a value that is not allowed."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        name = field if len(field) <= SHOWN_CHARS else f"{field[:SHOWN_CHARS - 20]}... ({len(field)} characters)"
        rule = allowed if len(allowed) <= 2000 else allowed[:1980] + "..."  # a list of choices stays whole
        super().__init__(f"{name}={shown(value)} is not allowed: {rule}")


class DatasetMissing(SddError, FileNotFoundError):
    """A data set is not on disk and cannot be downloaded."""
