"""Figures of the study beyond the paper: selection regret, and memorisation example by example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sddlab.figures.axis import remaining_fraction, sparsity_axis
from sddlab.figures.theme import OKABE_ITO, TEMPLATE

SHARES = {
    "noisy_fitted": ("noisy examples fitted to their noisy label", OKABE_ITO["vermillion"]),
    "noisy_true": ("noisy examples predicted as their true class", OKABE_ITO["bluish green"]),
    "clean_right": ("clean examples predicted right", OKABE_ITO["blue"]),
    "clean_forgotten": ("clean examples forgotten since the dense level", OKABE_ITO["black"]),
}


def regret_figure(summary: pd.DataFrame, title: str = "Which level to keep with noisy labels only") -> go.Figure:
    """Mean regret (points below the clean-test oracle) per rule, one bar group per preset and noise rate,
    with the spread over seeds as error bars."""
    fig = go.Figure()
    groups = summary.assign(group=summary["preset"] + " @ " + (100 * summary["noise.rate"]).round().astype(int)
                            .astype(str) + "% noise")
    for group, rows in groups.groupby("group", sort=True):
        fig.add_bar(x=rows["rule"], y=rows["regret_mean"], name=group,
                    error_y={"type": "data", "array": rows["regret_std"].fillna(0.0).tolist()},
                    hovertemplate="%{x}: %{y:.2f} points<extra>" + group + "</extra>")
    fig.update_layout(title=title, barmode="group", yaxis_title="regret (accuracy points)", template=TEMPLATE,
                      legend={"orientation": "h", "y": -0.2})
    return fig


def memorisation_figure(summary: pd.DataFrame, title: str = "Who is fitted, level by level") -> go.Figure:
    """Shares of noisy and clean training examples fitted, right and forgotten, on the sparsity axis,
    with the test accuracy dashed for reference."""
    fig = go.Figure()
    x = remaining_fraction(summary["sparsity"])
    for column, (label, colour) in SHARES.items():
        fig.add_scatter(x=x, y=summary[column], name=label, mode="lines+markers", line={"color": colour},
                        customdata=100 * summary["sparsity"],
                        hovertemplate="sparsity %{customdata:.2f}%: %{y:.3f}<extra>" + label + "</extra>")
    fig.add_scatter(x=x, y=summary["test_acc"], name="test accuracy", mode="lines", line={"dash": "dash",
                    "color": "black"})
    fig.update_layout(title=title, yaxis_title="share of examples", template=TEMPLATE,
                      legend={"orientation": "h", "y": -0.25})
    sparsity_axis(fig)
    return fig


def examples_figure(examples: pd.DataFrame, last_sparsity: float,
                    title: str = "When each noisy label stops being fitted") -> go.Figure:
    """One point per noisy training example: x the sparsity from which the network never fits its noisy
    label again (those fitted to the last level sit at `last_sparsity`), y its true class (jittered).
    Hover names the example and both labels; `customdata[0]` is the example index for linked views."""
    noisy = examples[examples["noisy"]]
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(noisy))
    sparsity = noisy["stops_fitted_sparsity"].fillna(last_sparsity)
    scatter = go.Scattergl if len(noisy) > 5000 else go.Scatter  # WebGL only where SVG would crawl
    fig = go.Figure(scatter(
        x=remaining_fraction(sparsity), y=noisy["true_label"] + jitter, mode="markers",
        marker={"size": 6, "color": noisy["label"], "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": "noisy label"}},
        customdata=np.stack([noisy["example"], noisy["true_label"], noisy["label"], 100 * sparsity], axis=1),
        hovertemplate="example %{customdata[0]}<br>true label %{customdata[1]}, noisy label %{customdata[2]}"
                      "<br>never fitted again from sparsity %{customdata[3]:.2f}%<extra></extra>"))
    fig.update_layout(title=title, yaxis_title="true class", template=TEMPLATE)
    sparsity_axis(fig)
    return fig
