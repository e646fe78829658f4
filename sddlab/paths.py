"""Where data sets and run directories live: one rule for the command line, notebooks, explorer and API.

A folder given explicitly (a `--data`/`--results` flag or argument) wins; else the environment variable
(`SDDLAB_DATA`, `SDDLAB_RESULTS`); else `data/` and `results/` in the current folder.
"""

from __future__ import annotations

import os
from pathlib import Path

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
