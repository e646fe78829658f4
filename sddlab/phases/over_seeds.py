"""The phases of a curve over seeds, as numbers for tables and figures: each landmark's level, sparsity,
remaining weight count and accuracy, and the sweet peak's margin over the dense network with its spread.

The landmarks are those `detect_phases` finds on the seed-mean curve; the margin's spread is the standard
deviation over seeds of each seed's accuracy at that sweet level minus its own dense accuracy, so it says
how surely the sweet peak beats (or misses) the dense network. `by` splits a table into groups (e.g. by
`data.subset` for the data-size study), one row each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sddlab.phases.detect import detect_phases
from sddlab.phases.landmarks import Landmark, PhaseReport

LANDMARKS = ("critical", "sweet", "collapse")
SEED = "experiment.seed"


def _remaining(table: pd.DataFrame, level: int) -> float:
    """Mean remaining weight count at `level` (NaN when the table has no `remaining` column)."""
    if "remaining" not in table:
        return float("nan")
    return float(table.loc[table["level"] == level, "remaining"].mean())


def _landmark_fields(prefix: str, landmark: Landmark | None, table: pd.DataFrame) -> dict[str, Any]:
    if landmark is None:
        return {f"{prefix}_level": None, f"{prefix}_sparsity": np.nan, f"{prefix}_remaining": np.nan,
                f"{prefix}_acc": np.nan}
    return {f"{prefix}_level": landmark.level, f"{prefix}_sparsity": landmark.sparsity,
            f"{prefix}_remaining": _remaining(table, landmark.level), f"{prefix}_acc": landmark.test_acc}


def seed_margins(table: pd.DataFrame, level: int, test: str = "test_acc") -> pd.Series:
    """Per seed: test accuracy at `level` minus the same seed's dense (level 0) accuracy; seeds lacking either
    level are left out."""
    seeds = table[SEED] if SEED in table else pd.Series(0, index=table.index)
    wide = table.assign(_seed=seeds).pivot_table(index="_seed", columns="level", values=test, aggfunc="mean")
    if level not in wide or 0 not in wide:
        return pd.Series(dtype=float)
    return (wide[level] - wide[0]).dropna().rename("margin")


def landmark_row(table: pd.DataFrame, report: PhaseReport | None = None) -> dict[str, Any]:
    """One curve over seeds in one row: dense accuracy, critical minimum, sweet peak and collapse (level,
    sparsity, remaining, accuracy), the sweet-minus-dense margin, its spread over seeds, and the verdict."""
    report = report or detect_phases(table)
    row: dict[str, Any] = {"seeds": report.n_seeds, "has_double_descent": report.has_double_descent,
                           "dense_acc": report.dense_test_acc, "dense_remaining": _remaining(table, 0)}
    for name in LANDMARKS:
        row.update(_landmark_fields(name, getattr(report, name), table))
    sweet = report.sweet
    margins = seed_margins(table, sweet.level) if sweet is not None else pd.Series(dtype=float)
    row["margin"] = sweet.test_acc - report.dense_test_acc if sweet is not None else np.nan
    row["margin_std"] = float(margins.std(ddof=1)) if len(margins) > 1 else (0.0 if len(margins) else np.nan)
    row["margin_min"] = float(margins.min()) if len(margins) else np.nan
    row["margin_max"] = float(margins.max()) if len(margins) else np.nan
    return row


def landmarks_by(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """`landmark_row` for each group of `by` (no `by`: the whole table), groups sorted, missing values last."""
    if not by:
        return pd.DataFrame([landmark_row(table)])
    rows = []
    for key, group in table.groupby(by, sort=True, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, values, strict=True)), **landmark_row(group)})
    return pd.DataFrame(rows)


def per_seed(table: pd.DataFrame) -> pd.DataFrame:
    """Each seed's own curve through `landmark_row` (detected on that seed alone), one row per seed."""
    if SEED not in table:
        return pd.DataFrame([{SEED: 0, **landmark_row(table)}])
    return pd.DataFrame([{SEED: int(seed), **landmark_row(group)} for seed, group in table.groupby(SEED, sort=True)])
