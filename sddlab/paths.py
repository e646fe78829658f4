"""Where data sets and run directories live: one rule for the command line, notebooks, explorer and API.

A folder given explicitly (a `--data`/`--results` flag or argument) wins; else the environment variable
(`SDDLAB_DATA`, `SDDLAB_RESULTS`); else `data/` and `results/` in the current folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from sddlab.errors import ConfigError

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


def check_writable(results: Path, field: str = "results") -> None:
    """Fail early, naming the field (or option), when the results folder cannot be created or written."""
    results = Path(results)
    probe_root = results
    while not probe_root.exists():
        probe_root = probe_root.parent
    if not probe_root.is_dir() or not os.access(probe_root, os.W_OK | os.X_OK):
        raise ConfigError(field, str(results), "a folder this user can create and write")
