"""One tidy table over many run directories: a row per run x finished level, config fields as columns."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sddlab.errors import SddError
from sddlab.integrity import DAMAGED, DamagedRun
from sddlab.paths import results_dir
from sddlab.store import CONFIG_FILE, RunStore


class DamagedRunWarning(UserWarning):
    """A run directory that `sddlab verify` would not pass: skipped by the index when its records or its
    config cannot be trusted, else read with this one-line warning."""


def _labelled(run_dir: Path) -> pd.DataFrame:
    """One run's level table with its config fields as columns, from one check of the directory; a damaged
    record, or a config that is not the one the directory's name says, is a one-line `DamagedRun`."""
    report = RunStore(run_dir).read()
    if not report.config_matches:
        why = next((d.reason for d in report.damages if d.path == CONFIG_FILE), "not a valid config")
        raise DamagedRun(f"{run_dir / CONFIG_FILE} is damaged: {why}; its results are not labelled with it "
                         f"(`sddlab verify {run_dir}` lists what is wrong)")
    if report.warning():
        warnings.warn(report.warning(), DamagedRunWarning, stacklevel=3)
    table = pd.DataFrame(report.rows())
    if table.empty:
        return table
    for key, value in report.config.flat().items():
        table[key] = value
    table["run"] = run_dir.name
    table["run_dir"] = str(run_dir)
    return table


def load(run_dir: str | Path) -> pd.DataFrame:
    """The level table of one run directory, config fields as columns (`noise.rate`, ...); a damaged
    record is a one-line `DamagedRun` naming it, anything else `verify` would not pass one warning."""
    return _labelled(Path(run_dir))


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory under `root` (any depth); never a staging folder, nor files a repair moved aside
    (`RUN_DIR/damaged/<time>/config.json`)."""
    root = Path(root)
    return sorted(path.parent for path in root.rglob(CONFIG_FILE) if not path.parent.name.startswith(".")
                  and DAMAGED not in path.relative_to(root).parts[:-1])


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
        try:
            table = _labelled(Path(path))
        except DamagedRun as error:  # one damaged run among many: name it, index the others
            warnings.warn(f"skipped {error}", DamagedRunWarning, stacklevel=2)
            continue
        if not table.empty:
            frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
