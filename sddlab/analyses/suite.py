"""`analyse_all`: the paper's three analyses of a run in one call (what `sddlab analyse all` prints)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sddlab.analyses.cache import AnalysisResult
from sddlab.analyses.correlations import correlations
from sddlab.analyses.flatness import flatness
from sddlab.analyses.levels import AnalysedRun, as_run
from sddlab.analyses.tickets import tickets


def analyse_all(runs: AnalysedRun | str | Path | Sequence[AnalysedRun | str | Path], *, oneshot: bool = True,
                curvature_options: dict[str, Any] | None = None, redense_options: dict[str, Any] | None = None,
                interpolation_options: dict[str, Any] | None = None,
                landscape_options: dict[str, Any] | None = None, progress: bool = True,
                data_dir: str | Path | None = None, device: str = "auto") -> dict[str, AnalysisResult]:
    """Correlation table (over all runs), ticket vs re-init (vs one-shot) and flatness at the four phase
    sparsities (of the first run). Returns {'correlations', 'tickets', 'flatness'}; all cached."""
    runs = [runs] if isinstance(runs, (AnalysedRun, str, Path)) else list(runs)
    opened = [as_run(r, data_dir, device) for r in runs]
    first = opened[0]
    return {
        "correlations": correlations(opened, curvature_options=curvature_options, progress=progress),
        "tickets": tickets(first, oneshot=oneshot, progress=progress),
        "flatness": flatness(first, redense_options=redense_options, interpolation_options=interpolation_options,
                             landscape_options=landscape_options, curvature_options=curvature_options,
                             progress=progress),
    }
