"""Does the learning distance track test accuracy better than flatness? (the paper's second claim)

Across the levels of one run -- or of several runs (seeds), each (run, level) a row -- Spearman and
Kendall rank correlations of test accuracy with each candidate predictor: the learning-distance
variants, the Hessian trace and top eigenvalue of the sparse network, the fraction of noisy labels
memorised and the (noisy) training loss. The predictor table joins the level records, the cached
`distance` analysis and the cached `curvature` analysis of every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sddlab.analyses.cache import AnalysisCache, AnalysisResult
from sddlab.analyses.curvature import curvature
from sddlab.analyses.distance import VARIANTS, distance, wide
from sddlab.analyses.levels import AnalysedRun, as_run
from sddlab.analyses.math.ranks import correlation_table
from sddlab.figures.panels import correlation_figure

FLATNESS = ("hessian_trace", "top_eigenvalue")
OTHERS = ("memorized", "train_loss")


def predictors(run: AnalysedRun, *, with_curvature: bool = True, curvature_options: dict[str, Any] | None = None,
               progress: bool = True) -> pd.DataFrame:
    """One row per finished level of `run`: test_acc and every candidate predictor."""
    records = run.table()
    keep = ["level", "sparsity", "test_acc", *[c for c in OTHERS if c in records]]
    table = records[keep].merge(wide(distance(run, progress=progress).table).drop(columns=["sparsity", "test_acc"]),
                                on="level")
    if with_curvature:
        hessian = curvature(run, **(curvature_options or {}), progress=progress).table
        table = table.merge(hessian[["level", *FLATNESS]], on="level")
    return table.assign(run=run.dir.name, seed=run.seed)


def verdict(table: pd.DataFrame, method: str = "spearman") -> str:
    """One line: which predictor ranks test accuracy best, and whether distance beats flatness."""
    ranked = table.assign(strength=table[method].abs()).dropna(subset=["strength"])
    if ranked.empty:
        return "no predictor could be correlated (too few levels or constant columns)"
    best = ranked.loc[ranked["strength"].idxmax()]
    text = (f"best predictor of test accuracy: {best['predictor']} ({method} {best[method]:+.3f}, "
            f"p = {best[f'{method}_p']:.2g}, n = {int(best['n'])})")
    distances = ranked[ranked["predictor"].isin(VARIANTS)]
    flat = ranked[ranked["predictor"].isin(FLATNESS)]
    if distances.empty or flat.empty:
        return text
    d, f = distances.loc[distances["strength"].idxmax()], flat.loc[flat["strength"].idxmax()]
    if d["strength"] > f["strength"]:
        claim = "learning distance ranks test accuracy better than flatness, as the paper claims"
    else:
        claim = "flatness ranks test accuracy at least as well as learning distance, unlike the paper's claim"
    return (f"{text}; {claim} (best distance {d['predictor']} |{method}| {d['strength']:.3f} vs best flatness "
            f"{f['predictor']} {f['strength']:.3f})")


def correlations(runs: AnalysedRun | str | Path | Sequence[AnalysedRun | str | Path], *, with_curvature: bool = True,
                 curvature_options: dict[str, Any] | None = None, method: str = "spearman", progress: bool = True,
                 data_dir: str | Path | None = None, device: str = "auto") -> AnalysisResult:
    """Rank correlations of test accuracy with each predictor over all finished levels of the run(s).

    ``with_curvature=False`` skips the Hessian predictors (the only costly part); ``curvature_options``
    go to `curvature`. Written into the first run's analysis folder; `extra['predictors']` is the
    joined predictor table.
    """
    runs = [runs] if isinstance(runs, (AnalysedRun, str, Path)) else list(runs)
    opened = [as_run(r, data_dir, device) for r in runs]
    frames = [predictors(r, with_curvature=with_curvature, curvature_options=curvature_options, progress=progress)
              for r in opened]
    joined = pd.concat(frames, ignore_index=True)
    columns = [*VARIANTS, *(FLATNESS if with_curvature else ()), *[c for c in OTHERS if c in joined]]
    table = correlation_table(joined, "test_acc", columns)
    cache = AnalysisCache(opened[0].dir, "correlations", {
        "version": 1, "runs": sorted(str(r.dir) for r in opened), "curvature": with_curvature,
        "curvature_options": curvature_options or {}})
    cache.open()
    cache.write_table(table)
    cache.write_table(joined, "predictors")
    line = verdict(table, method)
    figure = correlation_figure(table, method, title=f"Rank correlation with test accuracy ({method})")
    summary = table.assign(rank=table[method].abs().rank(ascending=False, method="min").fillna(np.inf))
    return AnalysisResult("correlations", table, figure, cache.dir, summary=line,
                          compact=summary.sort_values("rank").drop(columns="rank"), extra={"predictors": joined})
