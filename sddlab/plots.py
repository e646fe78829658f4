"""Plotly figures of level tables: accuracy, memorisation and learning distance against sparsity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sddlab.analysis.figures import shade_phases
from sddlab.analysis.phases import PhaseReport
from sddlab.store import atomic_write_text

ACCURACY_SERIES = (
    ("test_acc", "test accuracy", "#1f77b4"),
    ("train_acc_noisy", "train accuracy (noisy labels)", "#ff7f0e"),
    ("memorized", "memorised noisy labels", "#d62728"),
)
DISTANCE_SERIES = (("learning_distance", "learning distance ‖w₀ − w⊙m‖", "#2ca02c"),)


def _aggregate(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean and std over seeds (or runs) per level; std is 0 for a single run."""
    grouped = table.groupby("level")
    out = pd.DataFrame({"remaining": grouped["remaining"].mean(), "sparsity": grouped["sparsity"].mean()})
    out["mean"] = grouped[column].mean()
    out["std"] = grouped[column].std().fillna(0.0)
    out["n"] = grouped[column].count()
    return out.reset_index()


def _band(fig: go.Figure, agg: pd.DataFrame, label: str, color: str, row: int, legend: bool) -> None:
    hover = "level %{customdata[0]}<br>sparsity %{customdata[1]:.2%}<br>remaining %{x}<br>%{y:.4f}<extra>" + label
    custom = np.stack([agg["level"], agg["sparsity"]], axis=1)
    if (agg["n"] > 1).any():
        upper, lower = agg["mean"] + agg["std"], agg["mean"] - agg["std"]
        fig.add_trace(
            go.Scatter(x=pd.concat([agg["remaining"], agg["remaining"][::-1]]), y=pd.concat([upper, lower[::-1]]),
                       fill="toself", fillcolor=color, opacity=0.18, line={"width": 0}, hoverinfo="skip",
                       showlegend=False, legendgroup=label),
            row=row, col=1,
        )
    fig.add_trace(
        go.Scatter(x=agg["remaining"], y=agg["mean"], mode="lines+markers", name=label, line={"color": color},
                   customdata=custom, hovertemplate=hover + "</extra>", legendgroup=label, showlegend=legend),
        row=row, col=1,
    )


def sparsity_ticks(remaining_dense: int) -> tuple[list[float], list[str]]:
    """Tick positions on the remaining-weights axis labelled by sparsity."""
    sparsities = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999]
    values = [remaining_dense * (1 - s) for s in sparsities]
    labels = [f"{s:.1%}".replace(".0%", "%") for s in sparsities]
    return values, labels


def curve_figure(table: pd.DataFrame, title: str = "Sparse double descent", phases: PhaseReport | None = None,
                 subtitle: str = "") -> go.Figure:
    """Two panels over a log axis of remaining weights (sparsity grows to the right): accuracies, distance.

    Several runs or seeds in `table` are shown as mean ± std bands; `phases` (from `detect_phases`)
    shades the light, critical, sweet and collapsed phases.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06)
    for column, label, color in ACCURACY_SERIES:
        if column in table and table[column].notna().any():
            _band(fig, _aggregate(table, column), label, color, row=1, legend=True)
    for column, label, color in DISTANCE_SERIES:
        if column in table and table[column].notna().any():
            _band(fig, _aggregate(table, column), label, color, row=2, legend=True)
    dense = int(table.loc[table["level"] == table["level"].min(), "remaining"].max())
    values, labels = sparsity_ticks(dense)
    for row in (1, 2):
        fig.update_xaxes(type="log", autorange="reversed", tickvals=values, ticktext=labels, row=row, col=1)
    fig.update_xaxes(title_text="sparsity (log axis of remaining prunable weights)", row=2, col=1)
    fig.update_yaxes(title_text="accuracy / fraction", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="learning distance", row=2, col=1)
    if phases is not None:
        shade_phases(fig, phases, scale=dense, rows=(1, 2), label_y=0.04)
    heading = f"{title}<br><sup>{subtitle}</sup>" if subtitle else title
    fig.update_layout(title=heading, template="plotly_white", height=680, hovermode="x unified",
                      legend={"orientation": "h", "y": -0.15})
    return fig


def write_html(fig: go.Figure, path: str | Path) -> Path:
    """Write a self-contained HTML file (plotly.js embedded, opens offline), atomically."""
    path = Path(path)
    atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
    return path


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def comparison_figure(table: pd.DataFrame, by: str, title: str = "", column: str = "test_acc") -> go.Figure:
    """One curve per value of `by` (e.g. 'noise.rate'): `column` solid, noisy-train accuracy dotted."""
    fig = go.Figure()
    for index, (value, group) in enumerate(table.groupby(by, sort=True)):
        color = PALETTE[index % len(PALETTE)]
        agg = _aggregate(group, column)
        fig.add_trace(go.Scatter(x=agg["remaining"], y=agg["mean"], mode="lines+markers", name=f"{by}={value}",
                                 line={"color": color}, legendgroup=str(value),
                                 error_y={"type": "data", "array": agg["std"], "visible": bool((agg["n"] > 1).any())}))
        if "train_acc_noisy" in group:
            train = _aggregate(group, "train_acc_noisy")
            fig.add_trace(go.Scatter(x=train["remaining"], y=train["mean"], mode="lines", showlegend=False,
                                     line={"color": color, "dash": "dot"}, legendgroup=str(value),
                                     name=f"{by}={value} train (noisy)"))
    dense = int(table.loc[table["level"] == table["level"].min(), "remaining"].max())
    values, labels = sparsity_ticks(dense)
    fig.update_xaxes(type="log", autorange="reversed", tickvals=values, ticktext=labels,
                     title_text="sparsity (log axis of remaining prunable weights)")
    fig.update_yaxes(title_text=f"{column} (solid), noisy-train accuracy (dotted)", range=[0, 1.02])
    fig.update_layout(title=title, template="plotly_white", height=480)
    return fig
