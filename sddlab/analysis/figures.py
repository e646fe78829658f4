"""Plotly figures for the analysis tables (pure: table in, `go.Figure` out, nothing written).

- `phase_figure`: test and noisy-train accuracy against the fraction of weights remaining (log axis,
  reversed so sparsity grows to the right), error bars over seeds, phases as shaded bands, the
  critical minimum, sweet peak and collapse marked.
- `interpolation_figure`: loss and accuracy along the interpolation path, one line per split.
- `loss_curve_figure`: 1-D loss (and accuracy) along random directions, one line per curve label.
- `correlation_figure`: Spearman (or Kendall) rho per predictor as bars, p-values in the hover.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sddlab.analysis.phases import PhaseReport

PHASE_COLOURS: dict[str, str] = {
    "light": "rgba(150, 150, 150, 0.12)",
    "critical": "rgba(214, 39, 40, 0.14)",
    "sweet": "rgba(44, 160, 44, 0.16)",
    "collapsed": "rgba(90, 90, 90, 0.22)",
}
_FLOOR = 1e-6  # remaining fraction used for 100 % sparsity, which a log axis cannot show


def _remaining(sparsity: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - np.asarray(sparsity, dtype=float), _FLOOR, None)


def phase_bands(report: PhaseReport) -> list[dict[str, float | str]]:
    """Contiguous runs of one phase as ``{phase, x0, x1}`` in remaining-weight fraction.

    Band edges sit at the geometric midpoint between neighbouring levels (the middle on a log axis);
    the outer edges extend half a level-step beyond the first and last level.
    """
    frame = report.to_frame()
    if frame.empty:
        return []
    x = _remaining(frame["sparsity"].to_numpy())
    logs = np.log10(x)
    if len(x) > 1:
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


def shade_phases(fig: go.Figure, report: PhaseReport, scale: float = 1.0, rows: tuple[int, ...] | None = None,
                 label_y: float = 0.98) -> None:
    """Shade each phase band on a log x axis of remaining weights (fraction times `scale`), labelled.

    Plotly places shapes on a log axis in data units but annotations in log10 units, so the two are
    added separately. `rows`: subplot rows to shade (the label goes on the first); None for a plain figure.
    """
    for band in phase_bands(report):
        x0, x1 = band["x0"] * scale, band["x1"] * scale
        colour = PHASE_COLOURS[str(band["phase"])]
        where = [{"row": row, "col": 1} for row in rows] if rows else [{}]
        for place in where:
            fig.add_vrect(x0=x0, x1=x1, fillcolor=colour, line_width=0, layer="below", **place)
        fig.add_annotation(x=float(np.log10(np.sqrt(x0 * x1))), y=label_y, yref="y domain", text=str(band["phase"]),
                           showarrow=False, font={"size": 11, "color": "#555"}, **where[0])


def phase_figure(report: PhaseReport, title: str | None = None) -> go.Figure:
    """Test and noisy-train accuracy vs remaining weights, phases shaded, landmarks marked."""
    frame = report.to_frame()
    x = _remaining(frame["sparsity"].to_numpy())
    hover = [f"level {lv}<br>sparsity {100 * s:.2f} %" for lv, s in zip(frame["level"], frame["sparsity"], strict=True)]
    fig = go.Figure()
    shade_phases(fig, report)
    errors = frame["test_se"].to_numpy() if report.n_seeds > 1 else None
    for column, label, extra in (
        ("test_acc", "test accuracy",
         {"error_y": None if errors is None else {"type": "data", "array": errors, "visible": True}}),
        ("train_acc_noisy", "train accuracy (noisy labels)", {"line": {"dash": "dot"}}),
    ):
        fig.add_trace(go.Scatter(x=x, y=frame[column], mode="lines+markers", name=label, text=hover,
                                 hovertemplate=f"%{{text}}<br>{label} %{{y:.4f}}<extra></extra>", **extra))
    marks = [
        ("critical minimum", report.critical_sparsity, report.critical_test_acc, "triangle-down"),
        ("sweet peak", report.sweet_sparsity, report.sweet_test_acc, "star"),
        ("collapse", report.collapse_sparsity, report.collapse_test_acc, "x"),
    ]
    for name, sparsity, acc, symbol in marks:
        if sparsity is not None and acc is not None:
            fig.add_trace(
                go.Scatter(
                    x=_remaining(np.array([sparsity])),
                    y=[acc],
                    mode="markers",
                    name=name,
                    marker={"symbol": symbol, "size": 13, "color": "black"},
                )
            )
    fig.update_xaxes(type="log", autorange="reversed", title="fraction of prunable weights remaining")
    fig.update_yaxes(title="accuracy")
    fig.update_layout(
        title=title or report.summary.split(":")[0], hovermode="closest", legend={"orientation": "h", "y": -0.2}
    )
    return fig


def interpolation_figure(df: pd.DataFrame, title: str = "Linear interpolation") -> go.Figure:
    """Loss (left) and accuracy (right) against alpha from `interpolate`'s table, one line per split."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, (split, part) in enumerate(df.groupby("split", sort=False)):
        colour = colours[i % len(colours)]
        part = part.sort_values("alpha")
        fig.add_trace(
            go.Scatter(
                x=part["alpha"], y=part["loss"], name=f"{split} loss", legendgroup=str(split), line={"color": colour}
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=part["alpha"],
                y=part["acc"],
                name=f"{split} accuracy",
                legendgroup=str(split),
                line={"color": colour, "dash": "dash"},
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title="alpha (0 = model a, 1 = model b)")
    fig.update_layout(title=title)
    return fig


def loss_curve_figure(curves: pd.DataFrame | Mapping[str, pd.DataFrame], title: str = "1-D loss curves") -> go.Figure:
    """Loss (left) and accuracy (right) along random directions.

    ``curves``: one `loss_curve_1d` table, a table with a ``label`` column, or ``{label: table}``
    (e.g. dense, critical, sweet, collapsed).
    """
    if isinstance(curves, pd.DataFrame):
        groups = list(curves.groupby("label", sort=False)) if "label" in curves.columns else [("curve", curves)]
    else:
        groups = list(curves.items())
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for label, part in groups:
        part = part.sort_values("alpha")
        fig.add_trace(
            go.Scatter(x=part["alpha"], y=part["loss"], name=str(label), legendgroup=str(label)), row=1, col=1
        )
        fig.add_trace(
            go.Scatter(x=part["alpha"], y=part["acc"], name=str(label), legendgroup=str(label), showlegend=False),
            row=1,
            col=2,
        )
    fig.update_xaxes(title="step along the filter-normalised direction")
    fig.update_layout(title=title)
    return fig


def correlation_figure(table: pd.DataFrame, method: str = "spearman", title: str | None = None) -> go.Figure:
    """Bar per predictor of the chosen rank correlation; NaN rows shown as empty bars with their note."""
    if method not in ("spearman", "kendall"):
        raise ValueError("method must be 'spearman' or 'kendall'")
    values = table[method].astype(float)
    notes = table["note"].fillna("") if "note" in table.columns else pd.Series([""] * len(table))
    hover = [
        f"{p}<br>{method} {v:.3f}, p = {pv:.3g}, n = {n}" if np.isfinite(v) else f"{p}<br>{note or 'undefined'}"
        for p, v, pv, n, note in zip(table["predictor"], values, table[f"{method}_p"], table["n"], notes, strict=True)
    ]
    colours = ["#2ca02c" if v > 0 else "#d62728" for v in values.fillna(0.0)]
    fig = go.Figure(
        go.Bar(
            x=table["predictor"],
            y=values.fillna(0.0),
            marker_color=colours,
            hovertext=hover,
            hoverinfo="text",
            text=[("n/a" if not np.isfinite(v) else f"{v:.2f}") for v in values],
            textposition="outside",
        )
    )
    fig.update_yaxes(range=[-1.1, 1.1], title=f"{method} rank correlation")
    fig.update_layout(title=title or f"Rank correlation with the target ({method})")
    return fig
