"""Where data sets and run directories live: one rule for the command line, notebooks, explorer and API.

A folder given explicitly (a `--data`/`--results` flag or argument) wins; else the environment variable
(`SDDLAB_DATA`, `SDDLAB_RESULTS`); else `data/` and `results/` in the current folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from sddlab.errors import ConfigError, shown

DATA_ENV = "SDDLAB_DATA"
RESULTS_ENV = "SDDLAB_RESULTS"


def _resolve(explicit: str | Path | None, variable: str, default: str) -> Path:
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    from_env = os.environ.get(variable, "").strip()
    return Path(from_env).expanduser() if from_env else Path.cwd() / default


def data_dir(explicit: str | Path | None = None) -> Path:
    """The folder holding data sets."""
    return _resolve(explicit, DATA_ENV, "data")


def results_dir(explicit: str | Path | None = None) -> Path:
    """The folder holding run directories (and notebook outputs under `notebooks/`)."""
    return _resolve(explicit, RESULTS_ENV, "results")


def results_field(explicit: str | Path | None) -> str:
    """How an error names the results folder: `--results`, or the variable when that is what chose it."""
    if (explicit is None or str(explicit) == "") and os.environ.get(RESULTS_ENV, "").strip():
        return RESULTS_ENV
    return "--results"


def check_writable(results: str | Path, field: str = "results", value: object = None) -> None:
    """Fail early, naming the field (or option), the path and the OS's reason, when the folder cannot be
    created or written: probed by making its missing folders and a file in it, all removed again (nothing
    is left behind by bad input). `value` is what the error shows (default: the folder)."""
    results = Path(results)
    try:
        made = _make_folders(results)
        try:
            _probe_file(results)
        finally:
            _remove_folders(made)
    except OSError as error:
        raise ConfigError(field, str(results) if value is None else value,
                          f"a folder this user can create and write ({_reason(error)})") from None


def _make_folders(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; the ones made here, deepest first (for `_remove_folders`)."""
    missing = []
    while not os.path.lexists(folder) and folder.parent != folder:  # lexists: a dangling link is there
        missing.append(folder)
        folder = folder.parent
    made: list[Path] = []
    try:
        for path in reversed(missing):
            try:
                path.mkdir()
                made.insert(0, path)
            except FileExistsError:  # made meanwhile by another process: a folder is fine
                if not path.is_dir():
                    raise
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    except OSError:
        _remove_folders(made)
        raise
    return made


def _probe_file(folder: Path) -> None:
    """Create and drop a nameless file in `folder`: `os.access` says yes to root even where writes fail."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:  # named after the folder, not the temporary file's random name
        raise _NoFileHere(error.errno, error.strerror or str(error), str(folder)) from None


class _NoFileHere(OSError):
    """A folder that is there, but in which no file can be created."""


def _remove_folders(made: list[Path]) -> None:
    """Remove the (empty) folders a probe made, deepest first; one another process filled meanwhile stays."""
    for path in made:
        with contextlib.suppress(OSError):
            path.rmdir()


def _reason(error: OSError) -> str:
    """Why a folder could not be made or written, in the OS's words, with the path it failed at."""
    where = error.filename
    if where is None:
        return str(error.strerror or error)
    if os.path.islink(where) and not os.path.exists(where):
        with contextlib.suppress(OSError):  # (the link removed meanwhile: the OS's words below)
            return f"{shown(str(where))} is a link to {shown(os.readlink(where))}, which does not exist"
    if isinstance(error, _NoFileHere):
        return f"no file can be created in {shown(str(where))}: {error.strerror}"
    if isinstance(error, (FileExistsError, NotADirectoryError)) and os.path.lexists(where):
        return f"{shown(str(where))} is not a folder"
    return f"{error.strerror or error}: {shown(str(where))}"
