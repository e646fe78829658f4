"""1-D loss curves of the sparse network, or of its re-dense minimiser (as the paper's Figs. 8 and 43),
along filter-normalised random directions (Li et al. 2018).

For each level and direction ``d`` the curve is the loss (and accuracy) at ``w + alpha d`` for
``points`` values of alpha in [-span, span], on the noisy training set and the test set (optionally a
seeded subset). Direction ``d`` is drawn from the stream ``(seed, 'direction', d)``, the same raw draw
at every level (common random numbers); masking and filter normalisation then fit it to each level's
sparse weights, so pruned weights stay zero along the whole curve.

Sharpness per (level, direction, split): ``rise`` = mean loss at alpha = ±``probe`` (default 0.5)
minus the loss at 0, and ``curvature_fit`` = second derivative of a quadratic fitted to the points
with |alpha| <= ``probe``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sddlab.analyses.cache import AnalysisCache, AnalysisResult
from sddlab.analyses.levels import SPLITS, AnalysedRun, OpenedLevel, as_run
from sddlab.analyses.math.directions import filter_normalised_direction, loss_curve_1d
from sddlab.analyses.redense import minimiser
from sddlab.errors import ConfigError
from sddlab.figures.paths import loss_curve_figure
from sddlab.seeds import torch_stream


def sharpness(table: pd.DataFrame, probe: float = 0.5) -> pd.DataFrame:
    """Per (level, direction, split): loss at 0, loss rise at |alpha| = probe, quadratic-fit curvature."""
    rows = []
    for (level, direction, split), part in table.groupby(["level", "direction", "split"], sort=True):
        part = part.sort_values("alpha")
        alpha, loss = part["alpha"].to_numpy(dtype=float), part["loss"].to_numpy(dtype=float)
        centre = float(np.interp(0.0, alpha, loss))
        side = (float(np.interp(-probe, alpha, loss)) + float(np.interp(probe, alpha, loss))) / 2
        near = np.abs(alpha) <= probe + 1e-9
        fit = float(2 * np.polyfit(alpha[near], loss[near], 2)[0]) if near.sum() >= 3 else float("nan")
        rows.append({"level": int(level), "sparsity": part["sparsity"].iloc[0], "direction": int(direction),
                     "split": split, "loss_at_0": centre, "rise": side - centre, "curvature_fit": fit})
    return pd.DataFrame(rows)


def landscape(run: AnalysedRun | str | Path, levels: list[int] | None = None, *, span: float = 1.0,
              points: int = 41, directions: int = 1, subset: int | None = None, probe: float = 0.5,
              at: str = "sparse", redense_options: dict[str, Any] | None = None,
              progress: bool = True, data_dir: str | Path | None = None, device: str = "auto") -> AnalysisResult:
    """1-D loss curves of each level: tidy rows (level, sparsity, at, direction, split, alpha, loss, acc).

    ``at``: around the sparse network (``sparse``) or its re-dense minimiser (``redense``, as the
    paper's Figs. 8 and 43; `redense` runs first with ``redense_options`` where not cached).
    """
    if span <= 0 or points < 3 or directions < 1:
        raise ConfigError("landscape", {"span": span, "points": points, "directions": directions},
                          "span > 0, at least 3 points and 1 direction")
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    alphas = [float(a) for a in np.round(np.linspace(-span, span, points), 6)]
    network, where = minimiser(run, levels, at, redense_options, progress)
    cache = AnalysisCache(run.dir, "landscape", {"version": 1, "alphas": alphas, "directions": directions,
                                                 "subset": subset, **where})

    def compute(opened: OpenedLevel) -> list[dict]:
        model, mask = network(opened)
        rows = []
        for d in range(directions):
            direction = filter_normalised_direction(model, mask, generator=torch_stream(run.seed, "direction", d))
            for split in SPLITS:
                x, y = run.eval_set(split, subset)
                curve = loss_curve_1d(model, mask, direction, x, y, alphas, batch_size=run.runtime.eval_chunk)
                rows.extend({"level": opened.level, "sparsity": opened.sparsity, "at": at, "direction": d,
                             "split": split, **row} for row in curve.to_dict("records"))
        return rows

    table = run.per_level(cache, levels, compute, desc="1-D loss curves", progress=progress)
    sharp = sharpness(table, probe)
    train = table[(table["split"] == "train") & (table["direction"] == 0)]
    around = "the re-dense minimiser" if at == "redense" else "the sparse network"
    figure = loss_curve_figure(train.assign(label=[f"level {lv}" for lv in train["level"]]),
                               title=f"1-D train loss around {around}, along a filter-normalised random direction")
    return AnalysisResult("landscape", table, figure, cache.dir, compact=sharp.assign(at=at),
                          extra={"sharpness": sharp, "at": at},
                          summary=f"1-D loss curves around {around}: {len(levels)} levels x {directions} directions "
                                  f"x {points} points")
