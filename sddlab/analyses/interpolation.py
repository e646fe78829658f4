"""Linear interpolation between a level's sparse solution (alpha 0) and its re-dense solution (alpha 1).

Train loss and accuracy are on the noisy training labels (the loss the networks were trained on),
test on the clean test set; alpha in steps of 0.01 by default (the paper's). The re-dense weights
come from the cached `redense` analysis (trained first when missing). The barrier of a split is the
maximum loss along the path minus the mean of the two endpoints' losses (0 or less: no barrier).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sddlab.analyses.cache import AnalysisCache, AnalysisResult
from sddlab.analyses.levels import SPLITS, AnalysedRun, OpenedLevel, as_run
from sddlab.analyses.math.linear_path import DEFAULT_ALPHAS, interpolate
from sddlab.analyses.redense import redense, redense_weights
from sddlab.figures.paths import interpolation_figure


def barriers(table: pd.DataFrame) -> pd.DataFrame:
    """Per (level, split): loss at both ends, max loss along the path, barrier, min accuracy along it."""
    rows = []
    for (level, split), part in table.groupby(["level", "split"], sort=True):
        part = part.sort_values("alpha")
        start, end = part["loss"].iloc[0], part["loss"].iloc[-1]
        rows.append({"level": int(level), "sparsity": part["sparsity"].iloc[0], "split": split,
                     "loss_sparse": start, "loss_redense": end, "loss_max": part["loss"].max(),
                     "barrier": part["loss"].max() - (start + end) / 2,
                     "acc_sparse": part["acc"].iloc[0], "acc_redense": part["acc"].iloc[-1],
                     "acc_min": part["acc"].min()})
    return pd.DataFrame(rows)


def interpolation(run: AnalysedRun | str | Path, levels: list[int] | None = None, *,
                  alphas: Sequence[float] = DEFAULT_ALPHAS, subset: int | None = None,
                  duration: str | None = None, lr: float | None = None, bn_recalibrate: bool = False,
                  progress: bool = True, data_dir: str | Path | None = None, device: str = "auto") -> AnalysisResult:
    """Loss / accuracy along (1 - alpha) w_sparse + alpha w_redense for each level: tidy rows
    (level, sparsity, alpha, split, loss, acc). ``subset`` limits both splits to that many examples;
    ``duration`` / ``lr`` are the re-dense options; ``bn_recalibrate`` recomputes BatchNorm statistics
    on the training inputs at every alpha instead of interpolating them."""
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    dense = redense(run, levels, duration=duration, lr=lr, progress=progress)
    chosen = dense.extra["settings"]
    alphas = [float(a) for a in alphas]
    options = {"version": 1, "alphas": alphas, "subset": subset, "bn_recalibrate": bn_recalibrate,
               "redense": chosen.options()}
    cache = AnalysisCache(run.dir, "interpolation", options)

    def compute(opened: OpenedLevel) -> list[dict]:
        model = opened.model()  # the sparse end; a template only, never modified
        sets = {split: run.eval_set(split, subset) for split in SPLITS}
        recalibrate = sets["train"][0] if bn_recalibrate else None
        curve = interpolate(model.state_dict(), redense_weights(run, chosen, opened.level), model, sets, alphas,
                            batch_size=run.runtime.eval_chunk, bn_recalibrate=recalibrate)
        return [{"level": opened.level, "sparsity": opened.sparsity, **row} for row in curve.to_dict("records")]

    table = run.per_level(cache, levels, compute, desc="interpolation", progress=progress)
    summary = barriers(table)
    labelled = table.assign(split=[f"level {lv} {s}" for lv, s in zip(table["level"], table["split"], strict=True)])
    figure = interpolation_figure(labelled, title="Sparse (alpha 0) to re-dense (alpha 1) interpolation")
    worst = summary[summary["split"] == "train"]["barrier"].max() if not summary.empty else float("nan")
    return AnalysisResult("interpolation", table, figure, cache.dir, compact=summary, extra={"barriers": summary},
                          summary=f"interpolation: {len(levels)} levels x {len(alphas)} alphas; "
                                  f"largest train-loss barrier {worst:.4g}")
