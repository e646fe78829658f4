"""Beyond the paper, as sweeps over seeds: can sparse double descent be dodged, and at what price; and
which level a rule that sees only noisy labels would keep.

Every run holds out `holdout` of its noisy training set (`data.holdout`), so the same run directories
serve the antidote table and the selection-regret table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sddlab.presets import get_preset
from sddlab.selection import recommend, regret_summary
from sddlab.sweeps import SweepResult, make_sweep, run_sweep

ANTIDOTES: dict[str, dict[str, Any]] = {
    "none": {},
    "weight-decay": {"training.weight_decay": 5e-4},
    "distillation": {"training.distill_weight": 0.5, "training.distill_temperature": 4.0},
    "sparse-distillation": {"training.distill_weight": 0.5, "training.distill_temperature": 4.0,
                            "training.distill_teacher": "sparse", "training.distill_rule": "holdout-smoothed"},
    "entropy-stop": {"training.early_stop": "entropy"},
}


def run_study(presets: Sequence[str], seeds: Sequence[int], *, antidotes: Sequence[str] = tuple(ANTIDOTES),
              noise_rates: Sequence[float] = (), holdout: float = 0.1, overrides: dict[str, Any] | None = None,
              results: str | Path | None = None, kind: str = "inprocess", workers: int | None = None,
              data_dir: str | Path | None = None, device: str = "auto",
              on_sweep: Callable[[SweepResult], None] | None = None) -> pd.DataFrame:
    """Run (or read back) each preset × antidote, and the plain runs at the extra `noise_rates`, over `seeds`.

    Returns the tidy level table of every run with `preset` and `antidote` columns. Finished points are
    skipped, so a rerun finishes only what is missing."""
    unknown = [name for name in antidotes if name not in ANTIDOTES]
    if unknown:
        raise ValueError(f"antidote {unknown[0]!r} is unknown; choose from {', '.join(ANTIDOTES)}")
    options = {} if workers is None else {"workers": workers}
    tables = []
    for preset in presets:
        plans = [(name, ANTIDOTES[name], {}) for name in antidotes]
        if noise_rates:
            plans.append(("none", {}, {"noise.rate": tuple(noise_rates)}))
        for antidote, extra, grid in plans:
            spec = make_sweep(f"beyond-{preset}-{antidote}{'-noise' if grid else ''}", preset=preset,
                              overrides={"data.holdout": holdout, **(overrides or {}), **extra}, grid=grid,
                              seeds=list(seeds), kind=kind, **options)
            result = run_sweep(spec, results, data_dir=data_dir, device=device)
            if on_sweep is not None:
                on_sweep(result)
            if result.failed:
                raise RuntimeError(f"sweep {spec.name}: {len(result.failed)} run(s) failed: "
                                   f"{next(iter(result.failed.values()))}")
            tables.append(result.table.assign(preset=preset, antidote=antidote))
    every = pd.concat(tables, ignore_index=True)
    return every.drop_duplicates(subset=["run", "level", "antidote"]).reset_index(drop=True)


def valley(accuracy: np.ndarray) -> tuple[int, float]:
    """The critical dip of a curve: the level lying deepest below both an earlier and a later level,
    and how deep (min(best before, best after) - its accuracy); depth 0 when the curve has no valley."""
    before = np.maximum.accumulate(accuracy)
    after = np.maximum.accumulate(accuracy[::-1])[::-1]
    depth = np.minimum(before, after) - accuracy
    deepest = int(np.argmax(depth))
    return deepest, float(depth[deepest])


def _per_run(table: pd.DataFrame) -> dict[str, float]:
    """One run's curve in five numbers: dense accuracy, critical dip, sweet peak (the best level after the
    dip), the sparsity of the best level overall, and the training steps."""
    levels = table.sort_values("level")
    accuracy = levels["test_acc"].to_numpy(float)
    deepest, depth = valley(accuracy)
    return {"dense_acc": float(accuracy[0]), "dip_points": 100 * depth,
            "sweet_acc": float(accuracy[deepest:].max()),
            "best_sparsity": float(levels["sparsity"].iloc[int(np.argmax(accuracy))]),
            "steps": float(levels["iterations"].sum())}


def antidote_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per preset and antidote (at the preset's own noise rate), mean ± std over seeds of the dense
    accuracy, the critical dip (`valley`, in points), the sweet peak, the sparsity of the best level,
    and the training steps relative to no antidote."""
    own_rate = {preset: get_preset(preset).noise.rate for preset in table["preset"].unique()}
    own = table[np.isclose(table["noise.rate"], table["preset"].map(own_rate))]
    rows = [{"preset": preset, "antidote": antidote, "seed": run["experiment.seed"].iloc[0], **_per_run(run)}
            for (preset, antidote, _), run in own.groupby(["preset", "antidote", "run"], sort=False)]
    per_run = pd.DataFrame(rows)
    baseline = per_run[per_run["antidote"] == "none"].groupby("preset")["steps"].mean()
    per_run["steps_ratio"] = per_run["steps"] / per_run["preset"].map(baseline)
    stats = per_run.drop(columns=["seed", "steps"]).groupby(["preset", "antidote"], sort=False)
    summary = stats.mean().add_suffix("_mean").join(stats.std().add_suffix("_std"))
    summary["seeds"] = stats.size()
    return summary.reset_index()


def selection_table(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Regret of every selection rule (mean ± std, worst) per preset and noise rate, over the runs
    without an antidote; and the recommended rule (lowest mean regret over the groups)."""
    plain = table[table["antidote"] == "none"]
    summary = regret_summary(plain, ["preset", "noise.rate"])
    return summary, recommend(summary)
