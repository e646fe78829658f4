"""The one sparsity axis every figure shares, and phase shading on it.

x is the fraction of prunable weights remaining, on a reversed log axis (sparsity grows to the right),
with ticks labelled by sparsity. 100 % sparsity, which a log axis cannot show, sits at `FLOOR`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sddlab.figures.theme import PHASES, SMALL_SIZE
from sddlab.phases import PhaseReport

FLOOR = 1e-6
TICK_SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999)
AXIS_TITLE = "sparsity (log axis of remaining prunable weights)"
PHASE_COLOURS: dict[str, str] = {phase: style.fill for phase, style in PHASES.items()}


def remaining_fraction(sparsity: Any) -> np.ndarray:
    """The x coordinate of each sparsity: 1 - sparsity, clipped at FLOOR."""
    return np.clip(1.0 - np.asarray(sparsity, dtype=float), FLOOR, None)


def paper_axis(table: pd.DataFrame) -> pd.DataFrame:
    """The level table on the paper's sparsity axis when its runs use the official pruning count.

    Such runs (the paper presets) count never-pruned layers in the sparsity, as the paper's figures do,
    so `sparsity` / `remaining` are replaced by `sparsity_paper` / `remaining_paper` (a copy; phases
    detected on it and figures drawn from it then share the paper's axis). Other tables are returned as is.
    """
    official = "pruning.count" in table and len(table) and (table["pruning.count"] == "official").all()
    if not official or "sparsity_paper" not in table:
        return table
    return table.assign(sparsity=table["sparsity_paper"], remaining=table["remaining_paper"])


def sparsity_ticks(sparsities: Sequence[float] = TICK_SPARSITIES) -> tuple[list[float], list[str]]:
    """Tick positions on the remaining-fraction axis, labelled by sparsity ('0%', '50%', ..., '99.9%')."""
    values = [float(v) for v in remaining_fraction(sparsities)]
    labels = [f"{s:.1%}".replace(".0%", "%") for s in sparsities]
    return values, labels


def sparsity_axis(fig: go.Figure, *, title: bool = True, row: int | None = None, col: int | None = None) -> None:
    """Make the x axis (of one subplot, or all) the shared reversed log axis with sparsity ticks."""
    values, labels = sparsity_ticks()
    place = {} if row is None else {"row": row, "col": col or 1}
    fig.update_xaxes(type="log", autorange="reversed", tickvals=values, ticktext=labels,
                     title_text=AXIS_TITLE if title else None, **place)


def phase_bands(report: PhaseReport) -> list[dict[str, float | str]]:
    """Contiguous runs of one phase as ``{phase, x0, x1}`` in remaining-weight fraction.

    Band edges sit at the geometric midpoint between neighbouring levels (the middle on a log axis);
    the outer edges extend half a level-step beyond the first and last level.
    """
    frame = report.to_frame()
    if frame.empty:
        return []
    logs = np.log10(remaining_fraction(frame["sparsity"].to_numpy()))
    if len(logs) > 1:
        mids = (logs[:-1] + logs[1:]) / 2
        edges = np.concatenate([[logs[0] + (logs[0] - mids[0])], mids, [logs[-1] - (mids[-1] - logs[-1])]])
    else:
        edges = np.array([logs[0] + 0.05, logs[0] - 0.05])
    bands: list[dict[str, float | str]] = []
    phases = frame["phase"].tolist()
    start = 0
    for i in range(1, len(phases) + 1):
        if i == len(phases) or phases[i] != phases[start]:
            bands.append({"phase": phases[start], "x0": float(10 ** edges[start]), "x1": float(10 ** edges[i])})
            start = i
    return bands


def shade_phases(fig: go.Figure, report: PhaseReport, rows: tuple[int, ...] | None = None,
                 label_y: float = 1.0) -> None:
    """Shade each phase band on the sparsity axis, labelled at `label_y` of the (first) plot's height
    (by default just above the plot, so a label never sits on the data), and give the test-accuracy points
    (traces whose `meta` is 'test_acc') the phase's marker: phases never differ by colour alone.

    Plotly places shapes on a log axis in data units but annotations in log10 units, so the two are
    added separately. `rows`: subplot rows to shade (the label goes on the first); None for a plain figure.
    """
    bands = phase_bands(report)
    mark_phases(fig, bands)
    for band in bands:
        x0, x1 = float(band["x0"]), float(band["x1"])
        where = [{"row": row, "col": 1} for row in rows] if rows else [{}]
        for place in where:
            fig.add_vrect(x0=x0, x1=x1, fillcolor=PHASE_COLOURS[str(band["phase"])], line_width=0, layer="below",
                          **place)
        phase = str(band["phase"])
        fig.add_annotation(x=float(np.log10(np.sqrt(x0 * x1))), y=label_y, yref="y domain",
                           text=PHASES[phase].label(phase), yanchor="bottom", showarrow=False,
                           font={"size": SMALL_SIZE, "color": "#333"}, **where[0])


def phase_at(bands: list[dict[str, float | str]], x: float) -> str | None:
    """The phase whose band holds remaining fraction `x` (None outside every band)."""
    for band in bands:
        high, low = max(float(band["x0"]), float(band["x1"])), min(float(band["x0"]), float(band["x1"]))
        if low <= x <= high:
            return str(band["phase"])
    return None


def mark_phases(fig: go.Figure, bands: list[dict[str, float | str]]) -> None:
    """Each point of the test-accuracy traces (`meta` 'test_acc') drawn with its phase's marker symbol."""
    for trace in fig.data:
        if getattr(trace, "meta", None) == "test_acc" and trace.x is not None and len(trace.x):
            phases = [phase_at(bands, float(x)) for x in trace.x]
            trace.marker.symbol = [PHASES[p].symbol if p else "circle" for p in phases]
            trace.marker.size = 11  # large enough to tell ▼ from ★ from ✕ on a projector
