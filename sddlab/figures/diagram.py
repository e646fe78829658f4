"""The phase diagram (test accuracy over sparsity × a swept field, ridges and the dense contour) and the
remaining-weights-against-width figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sddlab.figures.axis import FLOOR, remaining_fraction, sparsity_axis

if TYPE_CHECKING:
    from sddlab.diagram import PhaseDiagram

RIDGES = {  # column prefix -> (label, colour, marker)
    "critical_sparsity": ("critical minimum", "#d62728", "triangle-down"),
    "sweet_sparsity": ("sweet peak", "#2ca02c", "triangle-up"),
}


def _ridge(fig: go.Figure, ridges: pd.DataFrame, column: str, y: np.ndarray) -> None:
    """One ridge: each column's mean sparsity, with the spread over seeds as horizontal error bars."""
    label, colour, marker = RIDGES[column]
    mean, std = ridges[f"{column}_mean"].to_numpy(float), ridges[f"{column}_std"].fillna(0.0).to_numpy(float)
    x = remaining_fraction(mean)
    seeds = ridges["double_descent_seeds"].astype(str) + "/" + ridges["seeds"].astype(str)
    fig.add_scatter(x=x, y=y, mode="lines+markers", name=f"{label} (mean ± std over seeds)",
                    line={"color": colour, "width": 3}, marker={"symbol": marker, "size": 11, "color": colour,
                                                                "line": {"color": "white", "width": 1}},
                    error_x={"type": "data", "symmetric": False, "array": std,
                             "arrayminus": np.minimum(std, np.maximum(x - FLOOR, 0.0)), "color": colour},
                    customdata=np.stack([100 * mean, 100 * std, seeds], axis=1),
                    hovertemplate=label + ": %{customdata[0]:.2f}% ± %{customdata[1]:.2f}% sparsity "
                                  "(%{customdata[2]} seeds with double descent)<extra></extra>")


def diagram_figure(diagram: PhaseDiagram, title: str | None = None) -> go.Figure:
    """Heatmap of mean test accuracy (x: the shared sparsity axis, y: the field's values), the critical
    minimum and sweet peak as ridges, and the contour where accuracy equals the column's dense accuracy."""
    y = np.arange(len(diagram.columns), dtype=float)
    x = remaining_fraction(diagram.sparsity)
    z = diagram.accuracy.to_numpy(float)
    fig = go.Figure(go.Heatmap(
        x=x, y=y, z=z, colorscale="Viridis", colorbar={"title": "mean test<br>accuracy"},
        customdata=[[[label, 100 * s] for s in diagram.sparsity] for label in diagram.columns],
        hovertemplate=diagram.field + " %{customdata[0]}<br>sparsity %{customdata[1]:.2f}%: %{z:.3f}<extra></extra>"))
    if len(diagram.columns) > 1:
        gain = z - z[:, :1]
        gain[:, 0] = np.nan  # the dense level equals itself: the contour starts where pruning begins
        fig.add_contour(x=x, y=y, z=gain, showscale=False, name="dense accuracy", showlegend=True,
                        contours={"coloring": "none", "start": 0.0, "end": 0.0, "size": 1.0},
                        line={"color": "white", "width": 2, "dash": "dash"}, hoverinfo="skip")
    for column in RIDGES:
        _ridge(fig, diagram.ridges, column, y)
    sparsity_axis(fig)
    fig.update_yaxes(tickvals=y, ticktext=diagram.columns, title_text=diagram.field)
    fig.update_layout(title=title or f"Phase diagram over {diagram.field}: test accuracy, ridges and the dense "
                      "contour (dashed: equal to the dense network)", template="plotly_white",
                      legend={"orientation": "h", "y": -0.22})
    return fig


def remaining_figure(table: pd.DataFrame, field: str, title: str | None = None) -> go.Figure:
    """Remaining prunable weights at the best level (and at the sweet peak) against the weights the
    network starts with, log-log, with the spread over seeds; the dashed line keeps a constant sparsity."""
    fig = go.Figure()
    start = table["start_weights"].to_numpy(float)
    for column, label, colour in (("best_remaining", "best level (clean test accuracy)", "#1f77b4"),
                                  ("sweet_remaining", "sweet peak", "#2ca02c"),
                                  ("pick_remaining", "noisy-label pick", "#ff7f0e")):
        if f"{column}_mean" not in table or table[f"{column}_mean"].isna().all():
            continue
        fig.add_scatter(x=start, y=table[f"{column}_mean"], mode="lines+markers", name=label,
                        line={"color": colour}, text=table["column"],
                        error_y={"type": "data", "array": table[f"{column}_std"].fillna(0.0), "color": colour},
                        hovertemplate=field + " %{text}: %{x:.0f} weights at the start, %{y:.0f} left<extra>"
                                      + label + "</extra>")
    first = table["best_remaining_mean"].iloc[0] / start[0]
    fig.add_scatter(x=start, y=first * start, mode="lines", name="same sparsity as the narrowest",
                    line={"color": "#999", "dash": "dash"}, hoverinfo="skip")
    fig.update_xaxes(type="log", title_text="prunable weights at the start (dense)")
    fig.update_yaxes(type="log", title_text="prunable weights left")
    fig.update_layout(title=title or f"Weights left at the best level against the starting size ({field})",
                      template="plotly_white", legend={"orientation": "h", "y": -0.2})
    return fig
