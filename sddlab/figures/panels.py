"""Figures of per-level analyses on the sparsity axis: learning distance, curvature, re-dense training,
and the rank correlations of test accuracy with each predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sddlab.figures.axis import remaining_fraction, sparsity_axis
from sddlab.figures.theme import OKABE_ITO, TEMPLATE


def distance_figure(network: pd.DataFrame, variants: tuple[str, ...], name: str = "") -> go.Figure:
    """Test accuracy (top) and every network-wide distance variant relative to its maximum (bottom).

    `network`: one row per level with level, sparsity, test_acc and a column per variant.
    """
    x = remaining_fraction(network["sparsity"])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.45, 0.55])
    fig.add_trace(go.Scatter(x=x, y=network["test_acc"], mode="lines+markers", name="test accuracy",
                             customdata=network["level"], hovertemplate="level %{customdata}: %{y:.4f}"), 1, 1)
    for variant in variants:
        values = network[variant].to_numpy(dtype=float)
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        fig.add_trace(go.Scatter(x=x, y=values / (top or 1.0), mode="lines+markers", name=variant,
                                 text=[f"{v:.4g}" for v in values], customdata=network["level"],
                                 hovertemplate="level %{customdata}: %{text}"), 2, 1)
    sparsity_axis(fig, title=False, row=1)
    sparsity_axis(fig, row=2)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_yaxes(title_text="distance / its maximum", row=2, col=1)
    fig.update_layout(title=f"{name}: learning distance against test accuracy".strip(": "), template=TEMPLATE,
                      height=640, legend={"orientation": "h", "y": -0.15})
    return fig


def layer_figure(layers: pd.DataFrame, variant: str) -> go.Figure:
    """One line per layer of one distance variant against the network's sparsity.

    `layers`: rows (level, sparsity, layer, distance) of that variant, one per layer and level.
    """
    fig = go.Figure()
    for layer, part in layers.groupby("layer"):
        part = part.sort_values("level")
        fig.add_trace(go.Scatter(x=remaining_fraction(part["sparsity"]), y=part["distance"], mode="lines+markers",
                                 name=str(layer)))
    sparsity_axis(fig)
    fig.update_yaxes(title=variant)
    fig.update_layout(title=f"{variant} per layer", template=TEMPLATE)
    return fig


def curvature_figure(table: pd.DataFrame) -> go.Figure:
    """Test accuracy, Hessian trace (± standard error) and top eigenvalue on the sparsity axis."""
    part = table.sort_values("level")
    x = remaining_fraction(part["sparsity"])
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("test accuracy", "Hessian trace", "top eigenvalue"))
    fig.add_trace(go.Scatter(x=x, y=part["test_acc"], mode="lines+markers", name="test accuracy"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=part["hessian_trace"], mode="lines+markers", name="Hessian trace",
                             error_y={"type": "data", "array": part["hessian_trace_se"].fillna(0.0)}), 2, 1)
    fig.add_trace(go.Scatter(x=x, y=part["top_eigenvalue"], mode="lines+markers", name="top eigenvalue"), 3, 1)
    for row in (1, 2, 3):
        sparsity_axis(fig, title=row == 3, row=row)
    fig.update_layout(title="Curvature of the sparse networks", template=TEMPLATE, height=720, showlegend=False)
    return fig


def redense_figure(table: pd.DataFrame) -> go.Figure:
    """Test and noisy-train accuracy of each level's sparse network and its re-dense counterpart."""
    fig = go.Figure()
    for model, dash in (("sparse", "solid"), ("redense", "dash")):
        part = table[table["model"] == model].sort_values("level")
        x = remaining_fraction(part["sparsity"])
        fig.add_trace(go.Scatter(x=x, y=part["test_acc"], name=f"{model} test", line={"dash": dash},
                                 mode="lines+markers", customdata=part["level"],
                                 hovertemplate="level %{customdata}: %{y:.4f}"))
        fig.add_trace(go.Scatter(x=x, y=part["train_acc_noisy"], name=f"{model} train (noisy)",
                                 line={"dash": "dot" if model == "sparse" else "dashdot"}, mode="lines+markers"))
    sparsity_axis(fig)
    fig.update_yaxes(title="accuracy")
    fig.update_layout(title="Re-dense training: sparse vs re-dense", template=TEMPLATE)
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
    colours = [OKABE_ITO["blue"] if v > 0 else OKABE_ITO["vermillion"] for v in values.fillna(0.0)]  # and the sign
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
    fig.update_layout(title=title or f"Rank correlation with the target ({method})", template=TEMPLATE)
    return fig
