"""One tidy table over many run directories: a row per run x finished level, config fields as columns."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sddlab.errors import SddError
from sddlab.integrity import DamagedRun
from sddlab.paths import results_dir
from sddlab.store import CONFIG_FILE, RunStore


class DamagedRunWarning(UserWarning):
    """A run directory the index skipped because a file in it is damaged."""


def load(run_dir: str | Path) -> pd.DataFrame:
    """The level table of one run directory, config fields as columns (`noise.rate`, ...); a damaged
    record is a one-line `DamagedRun` naming it."""
    RunStore(Path(run_dir)).records()
    return index([run_dir])


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory under `root` (any depth)."""
    return sorted(path.parent for path in Path(root).rglob(CONFIG_FILE) if not path.parent.name.startswith("."))


def index(runs: str | Path | Iterable[str | Path] | None = None) -> pd.DataFrame:
    """A tidy DataFrame over many runs: one row per run × finished level, config fields as columns.

    `runs`: a folder of run directories (None: `sddlab.paths.results_dir()`), one run directory, or a list.
    """
    if runs is None or isinstance(runs, (str, Path)):
        root = results_dir(runs)
        if not root.is_dir():
            raise SddError(f"results={str(root)!r} is not allowed: an existing folder of run directories")
        runs = [root] if (root / CONFIG_FILE).exists() else find_runs(root)
    frames = []
    for path in runs:
        store = RunStore(Path(path))
        try:
            table = store.table()
            config = store.config()
        except DamagedRun as error:  # one damaged run among many: name it, index the others
            warnings.warn(str(error), DamagedRunWarning, stacklevel=2)
            continue
        if table.empty:
            continue
        for key, value in config.flat().items():
            table[key] = value
        table["run"] = store.dir.name
        table["run_dir"] = str(store.dir)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
