"""What `sddlab analyse KIND RUN_DIR...` does: dispatch to an analysis, print its table, write its figures."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sddlab import analyses
from sddlab.analyses.cache import AnalysisResult
from sddlab.app.tables import format_result
from sddlab.errors import SddError

KINDS: tuple[str, ...] = (
    "distance", "redense", "interpolation", "landscape", "curvature", "tickets", "phases", "flatness",
    "correlations", "calibration", "all",
)
MULTI_RUN = ("phases", "correlations", "all")


def parse_levels(text: str | None) -> list[int] | None:
    """'0,5,10' -> [0, 5, 10]; None stays None."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SddError(f"--levels={text!r} is not allowed: comma-separated level numbers, e.g. 0,5,10") from None


def run_kind(kind: str, run_dirs: list[Path], *, levels: list[int] | None, data_dir: Path, device: str,
             redense_options: dict[str, Any], interpolation_options: dict[str, Any],
             landscape_options: dict[str, Any], curvature_options: dict[str, Any], oneshot: bool,
             results: Path | None, progress: bool) -> list[AnalysisResult]:
    """Run one kind of analysis on the run directories; returns its results (three for 'all')."""
    if kind not in KINDS:
        raise SddError(f"analysis kind {kind!r} is not allowed: one of {', '.join(KINDS)}")
    if not run_dirs:
        raise SddError("no run directory given: sddlab analyse KIND RUN_DIR [RUN_DIR ...]")
    if len(run_dirs) > 1 and kind not in MULTI_RUN:
        raise SddError(f"analysis {kind!r} takes one run directory ({len(run_dirs)} given); "
                       f"several only for {', '.join(MULTI_RUN)}")
    runs = _measured([analyses.AnalysedRun(path, data_dir, device) for path in run_dirs])
    run = runs[0]
    if levels is not None:
        run.check_levels(levels)
    common = {"progress": progress}
    calls: dict[str, Callable[[], Any]] = {
        "distance": lambda: analyses.distance(run, levels, **common),
        "redense": lambda: analyses.redense(run, levels, **redense_options, **common),
        "interpolation": lambda: analyses.interpolation(run, levels, **redense_options, **interpolation_options,
                                                        **common),
        "landscape": lambda: analyses.landscape(run, levels, **landscape_options, **common),
        "curvature": lambda: analyses.curvature(run, levels, **curvature_options, **common),
        "tickets": lambda: analyses.tickets(run, levels, oneshot=oneshot, results=results, **common),
        "phases": lambda: analyses.phases(runs),
        "flatness": lambda: analyses.flatness(
            run, levels=None if levels is None else {f"level {lv}": lv for lv in levels},
            redense_options=redense_options, interpolation_options=interpolation_options,
            landscape_options=landscape_options, curvature_options=curvature_options, **common),
        "correlations": lambda: analyses.correlations(runs, curvature_options=curvature_options, **common),
        "calibration": lambda: analyses.calibration(run, reliability=levels, **common),
        "all": lambda: list(analyses.analyse_all(
            runs, oneshot=oneshot, curvature_options=curvature_options, redense_options=redense_options,
            interpolation_options=interpolation_options, landscape_options=landscape_options, **common).values()),
    }
    outcome = calls[kind]()
    return outcome if isinstance(outcome, list) else [outcome]


def _measured(runs: list[analyses.AnalysedRun]) -> list[analyses.AnalysedRun]:
    """The runs with a measured level. One that diverged before any is refused in one line when it is the
    only one (not a missing column or checkpoint), else skipped with a line on stderr, as `report` does."""
    kept = []
    for each in runs:
        try:
            each.check_measured()
            kept.append(each)
        except SddError as error:
            if len(runs) == 1:
                raise
            print(f"sddlab: skipped: {error}", file=sys.stderr)
    if not kept:
        raise SddError(f"nothing to analyse: all {len(runs)} runs diverged before their first measured level")
    return kept


def print_result(result: AnalysisResult, echo: Callable[[str], None]) -> None:
    """Print one result (title, summary, table) and write its figures into its analysis folder."""
    echo(f"== {result.kind} ==")
    if result.summary:
        echo(result.summary)
    echo(format_result(result))
    paths = result.write_figures()
    echo(f"analysis folder: {result.directory} ({len(paths)} figures)")
