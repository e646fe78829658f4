"""A sweep's report folder, `<results>/sweeps/<name>/`: inside the results folder, one writer at a time.

The name was checked to be a plain folder name (`sddlab.limits.check_sweep_name`); here the folders on
the way must be real folders, not links that lead elsewhere. A second sweep of the same name says the
report is busy and waits, as a second run of one config does, and a report of a different sweep that
the same name held before is replaced with one line saying so. Its contents: the summary over seeds
(`summarize`) and the figure of bands (`sweep_figure`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from sddlab.errors import ConfigError
from sddlab.figures.curve import comparison_figure, curve_figure, shown_value
from sddlab.io import json_safe, read_json
from sddlab.store import folder_lock

if TYPE_CHECKING:
    from sddlab.sweeps import SweepSpec

SWEEPS = "sweeps"
REPORT = "sweep.json"
IDENTITY = ("base", "grid", "seeds")  # what makes two sweeps of one name the same sweep


def report_folder(results: Path, name: str) -> Path:
    """`<results>/sweeps/<name>`, created; a link or a file on the way is a one-line `ConfigError`."""
    results.mkdir(parents=True, exist_ok=True)
    folder = results
    for part in (SWEEPS, name):
        folder = folder / part
        if os.path.islink(folder) or (os.path.lexists(folder) and not folder.is_dir()):
            raise ConfigError("name", name, f"a sweep whose report folder {folder} is a folder inside the results "
                              "folder (it is a link or a file): remove it or choose another name")
        folder.mkdir(exist_ok=True)
    return folder


def _held_another(folder: Path, spec: SweepSpec) -> bool:
    """True when the folder's report is of a different sweep (base, grid or seeds) under the same name."""
    with contextlib.suppress(ValueError, OSError, TypeError, AttributeError):
        old = read_json(folder / REPORT)
        new = json.loads(json.dumps(json_safe(spec.to_dict())))
        return any(old.get(key) != new[key] for key in IDENTITY)
    return False


@contextlib.contextmanager
def report_lock(results: Path, spec: SweepSpec) -> Iterator[Path]:
    """Hold the sweep's report folder while the sweep runs and writes it; yields the folder."""
    folder = report_folder(Path(results), spec.name)
    with folder_lock(folder, "another sweep of this name is running"):
        if _held_another(folder, spec):
            print(f"sddlab: {folder} held the report of a different sweep named {spec.name!r} (another base, grid "
                  "or seeds): it is replaced", file=sys.stderr, flush=True)
        yield folder


SUMMARY_COLUMNS = ("test_acc", "train_acc_noisy", "memorized", "learning_distance")


def summarize(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, std and count over seeds per level for each group of `by` (the grid axes)."""
    if "diverged" in table:  # a diverged level has no measurements: its seed is reported as failed instead
        table = table[table["diverged"].isna()]
    if table.empty:
        return pd.DataFrame()
    keys = [*by, "level"]
    columns = [c for c in SUMMARY_COLUMNS if c in table]
    grouped = table.groupby(keys, sort=True, dropna=False)  # a null grid value (data.subset=null) is a group too
    summary = grouped[["sparsity"]].mean()
    summary["seeds"] = grouped["level"].count()
    for column in columns:
        summary[f"{column}_mean"] = grouped[column].mean()
        summary[f"{column}_std"] = grouped[column].std().fillna(0.0)
    summary = summary.reset_index()
    for axis in by:
        summary[axis] = _as_given(summary[axis], table[axis])
    return summary


def _as_given(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Group keys of a grid axis as the grid gave them: None for a null one, not NaN, and 100 not 100.0 beside it."""
    if not keys.isna().any():
        return keys
    given = {value: value for value in values.dropna()}  # 100.0 finds 100: equal numbers hash alike
    return pd.Series([None if pd.isna(key) else given.get(key, key) for key in keys], index=keys.index, dtype=object)


def sweep_figure(table: pd.DataFrame, spec: SweepSpec) -> go.Figure:
    """Bands over seeds: one curve per grid group (the full curve figure when there is no grid)."""
    if not spec.grid:
        return curve_figure(table, title=f"{spec.name}: {spec.base.name}", subtitle=f"seeds {list(spec.seeds)}")
    axes = list(spec.grid)
    texts = [table[axis].map(lambda value: str(shown_value(value))) for axis in axes]  # a null value: 'None'
    labelled = table.assign(group=[", ".join(parts) for parts in zip(*texts, strict=True)]) if len(axes) > 1 else table
    return comparison_figure(labelled, by="group" if len(axes) > 1 else axes[0],
                             title=f"{spec.name}: test accuracy, mean ± std over {len(spec.seeds)} seeds")
