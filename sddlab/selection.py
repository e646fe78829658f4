"""Which pruning level to keep when every label you have is noisy: selection rules and their regret.

A rule sees one run's level table without its clean test columns (only noisy-label accuracies, the
held-out noisy split of `data.holdout`, and the learning distance). Its regret is the clean-test oracle's
accuracy minus the accuracy of the level it picked, in accuracy points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

NOISY_COLUMNS = ("level", "sparsity", "train_acc_noisy", "holdout_acc_noisy", "learning_distance", "noise.rate")


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    pick: Callable[[pd.DataFrame], int]  # the noisy-only level table -> a row position
    needs: tuple[str, ...] = ()


def _sparsest_argmax(values: np.ndarray) -> int:
    """The position of the maximum; among ties, the sparsest level (the last one)."""
    best = np.nanmax(values)
    return int(np.flatnonzero(values >= best - 1e-12)[-1])


def _holdout(table: pd.DataFrame) -> int:
    return _sparsest_argmax(table["holdout_acc_noisy"].to_numpy(float))


def _holdout_smoothed(table: pd.DataFrame) -> int:
    """Held-out accuracy averaged with its two neighbouring levels: less noise from a small held-out split."""
    values = table["holdout_acc_noisy"].to_numpy(float)
    padded = np.pad(values, 1, mode="edge")
    return _sparsest_argmax((padded[:-2] + padded[1:-1] + padded[2:]) / 3)


def _learning_distance(table: pd.DataFrame) -> int:
    """The paper's reading: D peaks at the critical minimum and falls into the sweet phase, so take the
    smallest D at or beyond its peak."""
    distance = table["learning_distance"].to_numpy(float)
    peak = int(np.nanargmax(distance))
    return peak + int(np.nanargmin(distance[peak:]))


def _memorisation_ends(table: pd.DataFrame, threshold: float = 0.99) -> int:
    """The first level whose accuracy on the noisy training labels falls below `threshold` (the network
    stops fitting every noisy label); the last level when none does."""
    below = np.flatnonzero(table["train_acc_noisy"].to_numpy(float) < threshold)
    return int(below[0]) if len(below) else len(table) - 1


def _noise_floor(table: pd.DataFrame) -> int:
    """The first level whose noisy-label train accuracy has fallen to 1 - noise rate: a network that fits
    only the true classes scores about that on noisy labels, so memorisation is over there."""
    floor = 1 - float(table["noise.rate"].iloc[0])
    below = np.flatnonzero(table["train_acc_noisy"].to_numpy(float) <= floor)
    return int(below[0]) if len(below) else len(table) - 1


RULES: dict[str, Rule] = {rule.name: rule for rule in [
    Rule("dense", "keep the dense network (no pruning)", lambda table: 0),
    Rule("holdout", "highest accuracy on the held-out noisy split", _holdout, ("holdout_acc_noisy",)),
    Rule("holdout-smoothed", "highest held-out noisy accuracy, averaged over neighbouring levels",
         _holdout_smoothed, ("holdout_acc_noisy",)),
    Rule("learning-distance", "smallest learning distance at or beyond its peak", _learning_distance,
         ("learning_distance",)),
    Rule("memorisation-ends", "first level whose noisy-label train accuracy drops below 99 %", _memorisation_ends,
         ("train_acc_noisy",)),
    Rule("noise-floor", "first level whose noisy-label train accuracy falls to 1 - the (estimated) noise rate",
         _noise_floor, ("train_acc_noisy", "noise.rate")),
]}


def pick_level(table: pd.DataFrame, rule: str) -> int:
    """The level number `rule` would keep for one run's level table; the clean test columns are never read."""
    if rule not in RULES:
        raise ValueError(f"selection rule {rule!r} is unknown; choose one of {', '.join(RULES)}")
    chosen = RULES[rule]
    noisy = table.sort_values("level")[[c for c in NOISY_COLUMNS if c in table.columns]].reset_index(drop=True)
    missing = [c for c in chosen.needs if c not in noisy.columns or noisy[c].isna().all()]
    if missing:
        hint = " (run with data.holdout > 0)" if "holdout_acc_noisy" in missing else ""
        raise ValueError(f"rule {rule!r} needs the column {missing[0]}{hint}")
    return int(noisy["level"].iloc[chosen.pick(noisy)])


def regrets(table: pd.DataFrame, rules: list[str] | None = None) -> pd.DataFrame:
    """One row per rule for one run: the level picked, its sparsity and test accuracy, and the regret
    in points against the clean-test oracle (the best test accuracy over the run's levels)."""
    by_level = table.set_index("level")
    oracle = float(by_level["test_acc"].max())
    rows = []
    for name in rules or list(RULES):
        level = pick_level(table, name)
        accuracy = float(by_level.loc[level, "test_acc"])
        rows.append({"rule": name, "level": level, "sparsity": float(by_level.loc[level, "sparsity"]),
                     "test_acc": accuracy, "oracle_acc": oracle, "regret_points": 100 * (oracle - accuracy)})
    return pd.DataFrame(rows)


def regret_summary(runs: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """Mean ± std and worst regret of each rule over the runs of each group (e.g. data set and noise rate).

    `runs` is the level table of many runs (`sddlab.index` rows) with a `run` column naming each one."""
    per_run = [regrets(table).assign(**dict(zip(groups, key if isinstance(key, tuple) else (key,), strict=True)))
               for key, runs_of_group in runs.groupby(groups, sort=True)
               for _, table in runs_of_group.groupby("run", sort=True)]
    every = pd.concat(per_run, ignore_index=True)
    summary = every.groupby([*groups, "rule"], sort=False)["regret_points"].agg(["mean", "std", "max", "count"])
    return summary.rename(columns={"mean": "regret_mean", "std": "regret_std", "max": "regret_max",
                                   "count": "runs"}).reset_index()


def recommend(summary: pd.DataFrame) -> str:
    """The rule with the lowest regret averaged over every group (the dense baseline excluded)."""
    overall = summary[summary["rule"] != "dense"].groupby("rule")["regret_mean"].mean()
    return str(overall.idxmin())


PREFERENCE = ("holdout-smoothed", "holdout", "noise-floor", "memorisation-ends")  # the study's ranking, best first


def describe_pick(records: list[dict], noise_rate: float | None = None) -> str:
    """One line for a run's (or a mean over seeds') records: the level the best rule the columns allow
    would keep with noisy labels only (what the explorer shows under its table)."""
    table = pd.DataFrame(records)
    if noise_rate is not None and noise_rate > 0:
        table["noise.rate"] = noise_rate
    if table.empty or "train_acc_noisy" not in table:
        return ""
    for rule in PREFERENCE:
        if all(column in table and table[column].notna().any() for column in RULES[rule].needs):
            level = pick_level(table, rule)
            sparsity = float(table.set_index("level").loc[level, "sparsity"])
            hint = "" if rule.startswith("holdout") else " (set data.holdout > 0 for the held-out rules)"
            return f"noisy labels only: the {rule} rule keeps level {level} ({100 * sparsity:.2f}% sparsity){hint}"
    return ""
