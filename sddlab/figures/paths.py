"""Figures of losses along paths in weight space: sparse-to-re-dense interpolation, 1-D loss curves,
and flatness at the phase landmarks."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sddlab.figures.theme import OKABE_ITO, PALETTE, TEMPLATE


def interpolation_figure(df: pd.DataFrame, title: str = "Linear interpolation") -> go.Figure:
    """Loss (left) and accuracy (right) against alpha from `interpolate`'s table, one line per split."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    colours = PALETTE
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
    fig.update_layout(title=title, template=TEMPLATE)
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
    fig.update_layout(title=title, template=TEMPLATE)
    return fig


def flatness_figure(summary: pd.DataFrame, path: pd.DataFrame, curves: pd.DataFrame) -> go.Figure:
    """Interpolation and 1-D train loss per landmark (top), Hessian trace and top eigenvalue (bottom)."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=("sparse -> re-dense interpolation (train loss)",
                                                        "1-D loss curve (train loss, direction 0)",
                                                        "Hessian trace", "top eigenvalue"))
    colours = {"dense": OKABE_ITO["blue"], "critical": OKABE_ITO["vermillion"], "sweet": OKABE_ITO["bluish green"],
               "collapse": OKABE_ITO["black"]}
    for _, row in summary.iterrows():
        colour = colours.get(row["phase"], OKABE_ITO["reddish purple"])
        label = f"{row['phase']} (level {row['level']})"
        line = path[(path["level"] == row["level"]) & (path["split"] == "train")].sort_values("alpha")
        fig.add_trace(go.Scatter(x=line["alpha"], y=line["loss"], name=label, legendgroup=label,
                                 line={"color": colour}), 1, 1)
        curve = curves[(curves["level"] == row["level"]) & (curves["split"] == "train") & (curves["direction"] == 0)]
        curve = curve.sort_values("alpha")
        fig.add_trace(go.Scatter(x=curve["alpha"], y=curve["loss"], name=label, legendgroup=label, showlegend=False,
                                 line={"color": colour}), 1, 2)
    bar_colours = [colours.get(p, OKABE_ITO["reddish purple"]) for p in summary["phase"]]
    fig.add_trace(go.Bar(x=summary["phase"], y=summary["hessian_trace"], marker_color=bar_colours, showlegend=False),
                  2, 1)
    fig.add_trace(go.Bar(x=summary["phase"], y=summary["top_eigenvalue"], marker_color=bar_colours, showlegend=False),
                  2, 2)
    fig.update_xaxes(title_text="alpha", row=1, col=1)
    fig.update_xaxes(title_text="step along the direction", row=1, col=2)
    fig.update_layout(title="Flatness at the phase sparsities", template=TEMPLATE, height=720)
    return fig
