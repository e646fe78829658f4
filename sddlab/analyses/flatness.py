"""Phases of one or many runs, and flatness measured at the four phase sparsities (Figures 6-8).

`phases` runs `sddlab.phases.detect_phases` on the level table of one run or several (seeds are
averaged per level). `flatness` detects the phases of one run and, at its landmarks -- the dense
level 0, the critical minimum, the sweet peak and the collapse (those that exist) -- runs re-dense
training, the sparse-to-re-dense interpolation, 1-D loss curves and the Hessian measures (around the
sparse network, and with the suffix ``_redense`` around its re-dense minimiser as the paper's Figs. 8
and 43), each cached as its own analysis, and joins them into one summary row per landmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sddlab.analyses.cache import AnalysisCache, AnalysisResult
from sddlab.analyses.curvature import curvature
from sddlab.analyses.interpolation import interpolation
from sddlab.analyses.landscape import landscape
from sddlab.analyses.levels import AnalysedRun, as_run
from sddlab.analyses.redense import redense
from sddlab.collect import index
from sddlab.errors import SddError
from sddlab.figures.curve import phase_figure
from sddlab.figures.paths import flatness_figure
from sddlab.phases import PhaseReport, detect_phases

LANDMARKS: tuple[str, ...] = ("dense", "critical", "sweet", "collapse")


def level_table(runs: Sequence[AnalysedRun | str | Path]) -> pd.DataFrame:
    """The level tables of one or more runs, with a ``seed`` column (for averaging over seeds)."""
    paths = [run.dir if isinstance(run, AnalysedRun) else Path(run) for run in runs]
    for path in paths:
        as_run(path).check_measured()  # one clear error for a missing, non-run or diverged-at-once directory
    table = index(paths)
    if table.empty:
        raise SddError("no finished level in " + ", ".join(str(p) for p in paths))
    return table.assign(seed=table["experiment.seed"])


def phases(runs: AnalysedRun | str | Path | Sequence[AnalysedRun | str | Path], **detect: Any) -> AnalysisResult:
    """Phases of the level table of one run or several (seeds averaged); ``detect`` goes to detect_phases."""
    runs = [runs] if isinstance(runs, (AnalysedRun, str, Path)) else list(runs)
    report = detect_phases(level_table(runs), **detect)
    first = as_run(runs[0])
    cache = AnalysisCache(first.dir, "phases", {"version": 1, "runs": sorted(str(as_run(r).dir) for r in runs),
                                                "detect": detect})
    cache.open()
    table = report.to_frame()
    cache.write_table(table)
    return AnalysisResult("phases", table, phase_figure(report, title=f"{first.config.name}: phases"), cache.dir,
                          summary=report.summary, extra={"report": report})


def landmarks(report: PhaseReport) -> dict[str, int]:
    """Landmark name -> level: dense (0), critical, sweet, collapse; those the report did not find are left out."""
    found = {"critical": report.critical, "sweet": report.sweet, "collapse": report.collapse}
    return {"dense": 0, **{name: int(mark.level) for name, mark in found.items() if mark is not None}}


def flatness(run: AnalysedRun | str | Path, *, levels: dict[str, int] | None = None,
             redense_options: dict[str, Any] | None = None, interpolation_options: dict[str, Any] | None = None,
             landscape_options: dict[str, Any] | None = None, curvature_options: dict[str, Any] | None = None,
             progress: bool = True, data_dir: str | Path | None = None, device: str = "auto") -> AnalysisResult:
    """Flatness at the phase landmarks: one row per landmark (phase, level, sparsity, test_acc,
    hessian_trace, top_eigenvalue, redense_test_acc, interpolation_barrier, sharpness, ...).

    ``levels`` overrides the detected landmarks (name -> level). The option dicts go to `redense`
    (duration, lr), `interpolation` (alphas, subset, bn_recalibrate), `landscape` (span, points,
    directions, subset, probe) and `curvature` (subset, probes, eig_iters, method, tol, batch_size).
    """
    run = as_run(run, data_dir, device)
    report = detect_phases(level_table([run]))
    marks = dict(levels) if levels is not None else landmarks(report)
    chosen = sorted(set(run.check_levels(list(marks.values()))))
    dense_options = redense_options or {}
    common = {"progress": progress}
    redensed = redense(run, chosen, **dense_options, **common)
    path = interpolation(run, chosen, **dense_options, **(interpolation_options or {}), **common)
    curves = landscape(run, chosen, **(landscape_options or {}), **common)
    hessian = curvature(run, chosen, **(curvature_options or {}), **common)
    at_redense = {"at": "redense", "redense_options": dense_options}  # the paper's Figs. 8 and 43
    curves_redense = landscape(run, chosen, **(landscape_options or {}), **at_redense, **common)
    hessian_redense = curvature(run, chosen, **(curvature_options or {}), **at_redense, **common)
    table = summarise(run, marks, report, redensed, path, curves, hessian)
    table = table.join(_measures(curves_redense, hessian_redense, marks).add_suffix("_redense"))
    cache = AnalysisCache(run.dir, "flatness", {"version": 1, "levels": marks, "redense": dense_options,
                                                "interpolation": interpolation_options or {},
                                                "landscape": landscape_options or {},
                                                "curvature": curvature_options or {}})
    cache.open()
    cache.write_table(table)
    extra = {"report": report, "redense": redensed, "interpolation": path, "landscape": curves, "curvature": hessian,
             "landscape_redense": curves_redense, "curvature_redense": hessian_redense,
             "phases": phase_figure(report, title=f"{run.config.name}: phases")}
    return AnalysisResult("flatness", table, flatness_figure(table, path.table, curves.table), cache.dir,
                          summary=report.summary, extra=extra)


def summarise(run: AnalysedRun, marks: dict[str, int], report: PhaseReport, redensed: AnalysisResult,
              path: AnalysisResult, curves: AnalysisResult, hessian: AnalysisResult) -> pd.DataFrame:
    records = {int(r["level"]): r for r in run.records()}
    dense = redensed.table.set_index(["level", "model"])
    barriers = path.extra["barriers"].set_index(["level", "split"])
    sharp = curves.extra["sharpness"].groupby(["level", "split"])[["rise", "curvature_fit"]].mean()
    curv = hessian.table.set_index("level")
    rows = []
    for name, level in marks.items():
        record = records[level]
        rows.append({
            "phase": name, "level": level, "phase_label": report.phase_of(level), "sparsity": record["sparsity"],
            "test_acc": record["test_acc"], "train_acc_noisy": record["train_acc_noisy"],
            "hessian_trace": curv.loc[level, "hessian_trace"], "top_eigenvalue": curv.loc[level, "top_eigenvalue"],
            "redense_test_acc": dense.loc[(level, "redense"), "test_acc"],
            "redense_train_acc_noisy": dense.loc[(level, "redense"), "train_acc_noisy"],
            "interpolation_barrier": barriers.loc[(level, "train"), "barrier"],
            "interpolation_barrier_test": barriers.loc[(level, "test"), "barrier"],
            "sharpness": sharp.loc[(level, "train"), "rise"],
            "curvature_1d": sharp.loc[(level, "train"), "curvature_fit"],
        })
    return pd.DataFrame(rows)


def _measures(curves: AnalysisResult, hessian: AnalysisResult, marks: dict[str, int]) -> pd.DataFrame:
    """Hessian trace, top eigenvalue, 1-D sharpness and curvature of one kind of minimiser, per landmark."""
    sharp = curves.extra["sharpness"].groupby(["level", "split"])[["rise", "curvature_fit"]].mean()
    curv = hessian.table.set_index("level")
    return pd.DataFrame([{
        "hessian_trace": curv.loc[level, "hessian_trace"], "top_eigenvalue": curv.loc[level, "top_eigenvalue"],
        "sharpness": sharp.loc[(level, "train"), "rise"], "curvature_1d": sharp.loc[(level, "train"), "curvature_fit"],
    } for level in marks.values()])
