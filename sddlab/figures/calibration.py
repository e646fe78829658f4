"""Calibration figures: ECE, NLL and confidence beside test accuracy on the shared sparsity axis, and the
reliability diagram (accuracy against confidence, bin by bin) of chosen levels."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sddlab.figures.axis import remaining_fraction, shade_phases, sparsity_axis
from sddlab.phases import PhaseReport

PANELS = (  # (row, column, label, dash)
    (1, "test_acc", "test accuracy", "solid"),
    (1, "test_confidence", "mean confidence", "dot"),
    (2, "test_ece", "ECE (15 equal-width bins)", "solid"),
    (2, "test_ece_adaptive", "adaptive ECE (15 equal-mass bins)", "dot"),
    (3, "test_loss", "NLL (test loss)", "solid"),
)


def calibration_figure(table: pd.DataFrame, by: str | None = None, title: str = "Calibration along the sparsity axis",
                       phases: PhaseReport | None = None, label: str | None = None) -> go.Figure:
    """Three panels over the sparsity axis, means over seeds per level: accuracy (solid) with mean confidence
    (dotted; the gap is over-confidence), ECE over equal-width (solid) and equal-mass bins (dotted), NLL.
    `by`: one colour per group (e.g. the swept field's column), named `label=value` in the legend."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=(
        "test accuracy (solid) and mean confidence (dotted)",
        "expected calibration error: 15 equal-width (solid) and equal-mass (dotted) bins",
        "negative log-likelihood (test loss)"))
    groups = [(None, table)] if by is None else list(table.groupby(by, sort=False))
    for g, (name, rows) in enumerate(groups):
        colour = qualitative.Plotly[g % len(qualitative.Plotly)]
        means = rows.groupby("level").mean(numeric_only=True).reset_index()
        x = remaining_fraction(means["sparsity"])
        group = None if name is None else f"{label or by}={name}"
        for row, column, panel, dash in PANELS:
            if column not in means:
                continue
            legend = panel if group is None else group
            fig.add_scatter(x=x, y=means[column], name=legend, mode="lines+markers", row=row, col=1,
                            line={"color": colour if group is not None else _panel_colour(column), "dash": dash},
                            marker={"size": 4}, legendgroup=legend if group is None else group,
                            showlegend=group is None or column == "test_acc", customdata=100 * means["sparsity"],
                            hovertemplate="sparsity %{customdata:.2f}%: %{y:.3f}<extra>"
                                          + (panel if group is None else f"{group}: {panel}") + "</extra>")
    for row in (1, 2, 3):
        sparsity_axis(fig, title=row == 3, row=row, col=1)
    if phases is not None and by is None:
        shade_phases(fig, phases, rows=(1, 2, 3))
    fig.update_layout(title=title, template="plotly_white", height=900, legend={"orientation": "h", "y": -0.1})
    return fig


def _panel_colour(column: str) -> str:
    return {"test_acc": "#1f77b4", "test_confidence": "#1f77b4", "test_ece": "#d62728",
            "test_ece_adaptive": "#d62728", "test_loss": "#7f7f7f"}[column]


def reliability_figure(bins: pd.DataFrame, title: str = "Reliability diagram") -> go.Figure:
    """Accuracy against mean confidence per bin, one line per level (marker area ~ examples in the bin),
    and the diagonal of perfect calibration: points below it are over-confident."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                    line={"color": "#999", "dash": "dash"})
    for g, (level, rows) in enumerate(bins.groupby("level", sort=True)):
        rows = rows.sort_values("confidence")
        label = f"level {int(level)} ({100 * float(rows['sparsity'].iloc[0]):.2f}% sparsity)"
        size = 6 + 24 * (rows["count"] / max(int(bins["count"].max()), 1)) ** 0.5
        fig.add_scatter(x=rows["confidence"], y=rows["accuracy"], mode="lines+markers", name=label,
                        line={"color": qualitative.Plotly[g % len(qualitative.Plotly)]}, marker={"size": size},
                        customdata=rows[["count", "lower", "upper"]].to_numpy(),
                        hovertemplate="confidence %{x:.3f}, accuracy %{y:.3f}<br>%{customdata[0]} examples in "
                                      "(%{customdata[1]:.3f}, %{customdata[2]:.3f}]<extra>" + label + "</extra>")
    fig.update_layout(title=title, template="plotly_white", xaxis_title="mean confidence in the bin",
                      yaxis_title="accuracy in the bin", xaxis_range=[0, 1.02], yaxis_range=[0, 1.02],
                      legend={"orientation": "h", "y": -0.2})
    return fig
