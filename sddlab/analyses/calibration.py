"""Calibration along the sparsity axis, and the reliability diagram of any level.

Every level records `test_ece` (15 equal-width bins), `test_ece_adaptive` (15 equal-mass bins) and
`test_confidence` on the clean test set; `test_loss` is its negative log-likelihood. Runs made before those
fields existed stored only each example's predicted class (`RunStore.save_predictions`), which says nothing
about confidence, so their levels are evaluated again from the level checkpoint (final weights and mask) on
the clean test set, cached in RUN_DIR/analyses/calibration-<hash>/. A level with neither is marked missing.
Reliability bins always come from the checkpoint: the records keep only the summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sddlab.analyses.cache import AnalysisCache, AnalysisResult
from sddlab.analyses.levels import AnalysedRun, OpenedLevel, as_run
from sddlab.confidence import BINS, calibration_fields, reliability_bins
from sddlab.figures.calibration import calibration_figure, reliability_figure
from sddlab.metrics import evaluate
from sddlab.phases import detect_phases

FIELDS = ("test_ece", "test_ece_adaptive", "test_confidence")
COLUMNS = ["level", "sparsity", "remaining", "test_acc", "test_ece", "test_ece_adaptive", "test_loss",
           "test_confidence", "overconfidence", "source"]
SCHEMES = {"equal-width": False, "equal-mass": True}


def _measure(opened: OpenedLevel, bins: int) -> list[dict]:
    """A level evaluated on the clean test set: its summary row, then its reliability bins (both schemes)."""
    data = opened.run.setup.data
    test = evaluate(opened.model(), data.x_test, data.y_test, transform=data.spec.eval_transform,
                    runtime=opened.run.runtime)
    assert test.confidence is not None
    confidence, correct = test.confidence.cpu().numpy(), (test.predictions == data.y_test).cpu().numpy()
    rows = [opened.row(row="summary", test_acc=test.acc, test_loss=test.loss,
                       **calibration_fields(confidence, correct, bins))]
    for scheme, adaptive in SCHEMES.items():
        rows += [opened.row(row=scheme, **b) for b in reliability_bins(confidence, correct, bins, adaptive).to_dict(
            "records")]
    return rows


def default_reliability_levels(table: pd.DataFrame) -> list[int]:
    """The dense level and the sweet peak (the best level when the curve shows no double descent)."""
    report = detect_phases(table)
    best = report.sweet.level if report.sweet else int(table["level"].iloc[int(np.argmax(table["test_acc"]))])
    return sorted({0, best})


def calibration(run: AnalysedRun | str | Path, levels: list[int] | None = None, *,
                reliability: list[int] | None = None, bins: int = BINS, progress: bool = True,
                data_dir: str | Path | None = None, device: str = "auto") -> AnalysisResult:
    """Calibration of the given (default: every finished) levels, from the records or else the checkpoints,
    and the reliability bins of the `reliability` levels (default: the dense level and the sweet peak)."""
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    records = run.table()
    records = records[records["level"].isin(levels)]
    if "diverged" in records:  # no measurements to calibrate
        records = records[records["diverged"].isna()]
    reliability = run.check_levels(reliability) if reliability is not None else default_reliability_levels(records)
    if bins != BINS:  # the records hold 15-bin values only
        records = records.drop(columns=[c for c in FIELDS if c in records])
    lacking = [int(lv) for lv, row in records.set_index("level").iterrows() if any(pd.isna(row.get(c)) for c in FIELDS)]
    kept = [lv for lv in dict.fromkeys([*lacking, *reliability])
            if run.store.has_checkpoint(f"level_{lv:02d}")]
    cache = AnalysisCache(run.dir, "calibration", {"version": 1, "bins": bins})
    computed = run.per_level(cache, kept, lambda opened: _measure(opened, bins), desc="calibration",
                             progress=progress) if kept else pd.DataFrame(columns=["level", "row"])
    summary = computed[computed["row"] == "summary"].set_index("level")
    rows = []
    for _, record in records.sort_values("level").iterrows():
        level = int(record["level"])
        row = {key: record.get(key, np.nan) for key in COLUMNS[:-2]}
        if level in lacking:
            source = "checkpoint" if level in summary.index else "missing"
            row.update({key: summary.loc[level, key] if source == "checkpoint" else np.nan for key in FIELDS})
        else:
            source = "record"
        rows.append({**row, "overconfidence": row["test_confidence"] - row["test_acc"], "source": source})
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"level": int, "remaining": int})
    bins_table = computed[computed["row"] != "summary"].rename(columns={"row": "scheme"})
    figure = calibration_figure(table, title=f"{run.config.name}: calibration along the sparsity axis",
                                phases=detect_phases(records) if len(records) >= 3 else None)
    shown = bins_table[bins_table["level"].isin(reliability) & (bins_table["scheme"] == "equal-width")]
    extra = {"reliability": bins_table,
             "reliability_figure": reliability_figure(shown, title=f"{run.config.name}: reliability diagram")}
    missing = int((table["source"] == "missing").sum())
    summary_line = (f"calibration: {len(table)} levels ({int((table['source'] == 'checkpoint').sum())} from "
                    f"checkpoints, {missing} missing); reliability of levels {', '.join(map(str, reliability))}")
    return AnalysisResult("calibration", table, figure, cache.dir, summary=summary_line, extra=extra)


def with_calibration(table: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
    """An index table (many runs) with calibration filled in for the runs whose records predate it."""
    if table.empty:
        return table
    out = table.copy()
    for column in FIELDS:
        if column not in out:
            out[column] = np.nan
    for run_dir, rows in out.groupby("run_dir"):
        measured = rows["diverged"].isna() if "diverged" in rows else pd.Series(True, index=rows.index)
        if not rows.loc[measured, list(FIELDS)].isna().any().any():
            continue
        filled = calibration(run_dir, reliability=[], progress=progress).table.set_index("level")
        for column in FIELDS:
            out.loc[rows.index, column] = rows["level"].map(filled[column]).to_numpy()
    return out
