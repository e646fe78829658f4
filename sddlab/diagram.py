"""The phase diagram of sparse double descent: mean test accuracy over sparsity × one swept field (noise rate,
hidden width, width multiplier, weight decay), built from a sweep's run directories.

Every run's own curve goes through `detect_phases`; the sparsities of its critical minimum and sweet peak,
averaged over the seeds that show double descent, are the column's ridges (mean ± std). Beside them, per
run: the best level by clean test accuracy (the oracle) and the level the best noisy-label rule keeps
(`sddlab.selection`), their remaining weights, and the calibration of the dense and the sweet level.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sddlab.errors import ConfigError
from sddlab.figures.axis import paper_axis
from sddlab.phases import detect_phases
from sddlab.selection import PREFERENCE, RULES, pick_level
from sddlab.sweeps import SweepSpec, make_sweep

LAPTOP_VALUES: dict[str, list[Any]] = {  # what `sddlab diagram --field F` sweeps by default
    "noise.rate": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "model.hidden": [[32], [64], [128], [256], [512], [1024]],  # one hidden layer, 32x wider end to end
    "model.width": [0.125, 0.25, 0.5, 1.0, 2.0, 4.0],
    "training.weight_decay": [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
}
SHORT_NAMES = {"noise.rate": "noise", "model.hidden": "width", "model.width": "width",
               "training.weight_decay": "weight-decay"}
WIDTH_FIELDS = ("model.hidden", "model.width")
HOLDOUT = 0.1  # as `sddlab study`: the held-out noisy split the selection rules read
CALIBRATION = {"ece": "test_ece", "ece_adaptive": "test_ece_adaptive", "nll": "test_loss",
               "confidence": "test_confidence", "acc": "test_acc"}


def diagram_sweep(preset: str, field: str, values: Sequence[Any] | None = None, seeds: Sequence[int] = (0, 1, 2), *,
                  overrides: dict[str, Any] | None = None, holdout: float = HOLDOUT, name: str | None = None,
                  kind: str = "inprocess", **options: Any) -> SweepSpec:
    """The sweep behind a diagram: `preset` with `field` over `values` (default: its laptop values) × seeds,
    every run holding out `holdout` of its noisy training set; validated before any work."""
    if values is None:
        if field not in LAPTOP_VALUES:
            raise ConfigError("values", None, f"a list of values for {field} (defaults exist for "
                              f"{', '.join(LAPTOP_VALUES)})")
        values = LAPTOP_VALUES[field]
    name = name or f"diagram-{preset}-{SHORT_NAMES.get(field, field.replace('.', '-'))}"
    return make_sweep(name, preset=preset, overrides={"data.holdout": holdout, **(overrides or {})},
                      grid={field: tuple(values)}, seeds=list(seeds), kind=kind, **options)


def column_label(value: Any) -> str:
    """A column's name: widths joined by '-' ('256-256'), numbers in short form ('0.1', '0.0001')."""
    if isinstance(value, str) and value.startswith("["):
        value = json.loads(value)
    if isinstance(value, (list, tuple)):
        return "-".join(column_label(part) for part in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _order_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(sum(float(part) for part in label.split("-"))), label)
    except ValueError:
        return (1, 0.0, label)


@dataclass
class PhaseDiagram:
    """What the diagram figure and tables are drawn from; columns are the field's values, in order."""

    field: str
    columns: list[str]
    levels: np.ndarray  # level numbers, the heatmap's x (one sparsity per level, averaged over runs)
    sparsity: np.ndarray
    accuracy: pd.DataFrame  # column label x level: mean test accuracy over seeds
    runs: pd.DataFrame  # one row per run: its column, seed, landmarks, picks, remaining weights, calibration
    ridges: pd.DataFrame  # one row per column: the landmarks' sparsity, mean ± std over seeds
    table: pd.DataFrame  # the level table it was built from, with each row's `column`


def _level_fields(run: pd.DataFrame, level: int | None, prefix: str) -> dict[str, float]:
    """Sparsity, remaining weights, accuracy and calibration of one level of a run (NaN for None)."""
    match = run[run["level"] == level] if level is not None else run.iloc[0:0]
    row = match.iloc[0] if len(match) else None
    out = {f"{prefix}_level": np.nan if row is None else float(row["level"])}
    for key, column in {"sparsity": "sparsity", "remaining": "remaining", **CALIBRATION}.items():
        known = row is not None and column in row.index and pd.notna(row[column])
        out[f"{prefix}_{key}"] = float(row[column]) if known else np.nan
    return out


def _noisy_pick(run: pd.DataFrame) -> tuple[str | None, int | None]:
    """The level the study's preferred noisy-label rule keeps, among those the run's columns allow."""
    for rule in PREFERENCE:
        if all(column in run and run[column].notna().any() for column in RULES[rule].needs):
            return rule, pick_level(run, rule)
    return None, None


def run_row(run: pd.DataFrame) -> dict[str, Any]:
    """One run's curve in numbers: phase landmarks (its own detection), the oracle's best level, the
    noisy-label pick, and the dense level; each with sparsity, remaining weights, accuracy and calibration."""
    run = run[run["diverged"].isna()] if "diverged" in run else run
    run = run.sort_values("level").reset_index(drop=True)
    report = detect_phases(run)
    rule, pick = _noisy_pick(run)
    best = int(run["level"].iloc[int(np.argmax(run["test_acc"].to_numpy(float)))])
    row: dict[str, Any] = {"seed": int(run["experiment.seed"].iloc[0]), "run": run["run"].iloc[0],
                           "run_dir": run["run_dir"].iloc[0], "double_descent": report.has_double_descent,
                           "pick_rule": rule}
    critical = report.critical.level if report.critical else None
    sweet = report.sweet.level if report.sweet else None
    for prefix, level in (("dense", 0), ("critical", critical), ("sweet", sweet), ("best", best), ("pick", pick)):
        row.update(_level_fields(run, level, prefix))
    return row


def _mean_std(frame: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    out = {}
    for column in columns:
        values = frame[column].dropna()
        out[f"{column}_mean"] = float(values.mean()) if len(values) else np.nan
        out[f"{column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else (0.0 if len(values) else np.nan)
    return out


def phase_diagram(table: pd.DataFrame, field: str, order: Sequence[Any] | None = None) -> PhaseDiagram:
    """The diagram of a sweep's level table (`sddlab.index` rows) over `field`; `order`: the field's values
    in the order to draw them (default: sorted)."""
    if table.empty or field not in table:
        raise ConfigError("field", field, f"a field the runs differ in, a column of their table ({len(table)} rows)")
    table = paper_axis(table).assign(column=table[field].map(column_label))
    present = list(dict.fromkeys(table["column"]))
    wanted = [column_label(value) for value in order] if order is not None else sorted(present, key=_order_key)
    columns = [label for label in wanted if label in present]
    measured = table[table["diverged"].isna()] if "diverged" in table else table
    accuracy = measured.pivot_table(index="column", columns="level", values="test_acc", aggfunc="mean")
    accuracy = accuracy.reindex(columns)
    sparsity = measured.groupby("level")["sparsity"].mean().reindex(accuracy.columns)
    runs = pd.DataFrame([{"column": column, **run_row(run)} for (column, _), run in table.groupby(["column", "run"])])
    runs = runs.assign(position=runs["column"].map(columns.index)).sort_values(["position", "seed"])
    runs = runs.drop(columns="position").reset_index(drop=True)
    rows = []
    for column in columns:
        group = runs[runs["column"] == column]
        detected = group[group["double_descent"]]
        mean_curve = detect_phases(measured[measured["column"] == column])
        rows.append({"column": column, "seeds": len(group), "double_descent_seeds": len(detected),
                     **_mean_std(detected, ["critical_sparsity", "sweet_sparsity", "critical_acc", "sweet_acc"]),
                     **_mean_std(group, ["dense_acc", "best_sparsity", "best_acc"]),
                     "mean_curve_double_descent": mean_curve.has_double_descent,
                     "mean_curve_critical_sparsity": mean_curve.critical.sparsity if mean_curve.critical else np.nan,
                     "mean_curve_sweet_sparsity": mean_curve.sweet.sparsity if mean_curve.sweet else np.nan})
    return PhaseDiagram(field, columns, accuracy.columns.to_numpy(int), sparsity.to_numpy(float), accuracy,
                        runs, pd.DataFrame(rows), table[table["column"].isin(columns)])


def remaining_table(diagram: PhaseDiagram) -> pd.DataFrame:
    """Per column: the prunable weights it starts with, and the weights left at the best level (oracle), at
    the sweet peak (seeds with double descent) and at the noisy-label pick, mean ± std over seeds."""
    rows = []
    for column in diagram.columns:
        group = diagram.runs[diagram.runs["column"] == column]
        rows.append({"column": column, "seeds": len(group), "start_weights": float(group["dense_remaining"].mean()),
                     **_mean_std(group, ["best_remaining", "best_sparsity", "pick_remaining"]),
                     **_mean_std(group[group["double_descent"]], ["sweet_remaining"])})
    return pd.DataFrame(rows)


def calibration_table(diagram: PhaseDiagram) -> pd.DataFrame:
    """Per column, over the seeds with double descent: ECE, adaptive ECE, NLL, mean confidence and accuracy
    at the dense level and at the sweet peak (mean ± std), and how many seeds' sweet level has the lower ECE."""
    rows = []
    keys = [f"{where}_{key}" for key in CALIBRATION for where in ("dense", "sweet")]
    for column in diagram.columns:
        group = diagram.runs[(diagram.runs["column"] == column) & diagram.runs["double_descent"]]
        rows.append({"column": column, "seeds": len(group), **_mean_std(group, keys),
                     "sweet_lower_ece_seeds": int((group["sweet_ece"] < group["dense_ece"]).sum())})
    return pd.DataFrame(rows)
