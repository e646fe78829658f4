"""The data-size figure: where the critical minimum and the sweet peak sit (sparsity, remaining weights) and
how far the sweet peak rises above the dense network, against the number of training examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sddlab.datasize import SIZE
from sddlab.figures.axis import remaining_fraction, sparsity_ticks
from sddlab.figures.theme import PALETTE, TEMPLATE

LANDMARK_STYLE = (("critical", "critical minimum", PALETTE[1], "triangle-down"),
                  ("sweet", "sweet peak", PALETTE[2], "star"))


def datasize_figure(sizes: pd.DataFrame, title: str = "How the phases move with the amount of data") -> go.Figure:
    """Three rows on a log axis of training examples (a `phases_by_size` table): the landmarks' sparsity (as the
    curves' log axis of remaining weights, sparsity ticks), their remaining weight count, and the sweet peak's
    margin over dense with its spread over seeds. A size without double descent leaves a gap."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.36, 0.32, 0.32])
    x = sizes[SIZE].astype(float)
    seeds = sizes["seeds"].astype(int)
    for key, label, colour, symbol in LANDMARK_STYLE:
        sparsity = sizes[f"{key}_sparsity"].astype(float)
        remaining = sizes[f"{key}_remaining"].astype(float)
        custom = np.stack([100 * sparsity, remaining, sizes[f"{key}_acc"].astype(float), seeds], axis=1)
        hover = (f"{label}<br>%{{x:,}} training examples<br>sparsity %{{customdata[0]:.2f}} %<br>"
                 "%{customdata[1]:,.0f} weights remain<br>test accuracy %{customdata[2]:.4f} "
                 "(%{customdata[3]} seeds)<extra></extra>")
        style = {"mode": "lines+markers", "name": label, "legendgroup": key, "customdata": custom,
                 "hovertemplate": hover, "line": {"color": colour}, "marker": {"symbol": symbol, "size": 11}}
        fig.add_trace(go.Scatter(x=x, y=remaining_fraction(sparsity), **style), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=remaining, showlegend=False, **style), row=2, col=1)
    margin = sizes["margin"].astype(float)
    fig.add_trace(go.Scatter(
        x=x, y=margin, mode="lines+markers", name="sweet peak − dense (± std over seeds)",
        line={"color": PALETTE[0]}, marker={"size": 9},
        error_y={"type": "data", "array": sizes["margin_std"].astype(float).fillna(0.0), "visible": True},
        hovertemplate="%{x:,} training examples<br>sweet − dense %{y:+.4f}<extra></extra>"), row=3, col=1)
    fig.add_hline(y=0.0, line_dash="dot", line_color="#555", row=3, col=1)
    values, labels = sparsity_ticks()
    fig.update_yaxes(type="log", autorange="reversed", tickvals=values, ticktext=labels, title_text="sparsity",
                     row=1, col=1)
    fig.update_yaxes(type="log", title_text="remaining weights", row=2, col=1)
    fig.update_yaxes(title_text="margin over dense", tickformat="+.2f", row=3, col=1)
    fig.update_xaxes(type="log", tickvals=list(x.dropna()), tickformat=",d", row=3, col=1)
    fig.update_xaxes(type="log", title_text="training examples", row=3, col=1)
    fig.update_layout(title=title, template=TEMPLATE, height=820, hovermode="closest",
                      legend={"orientation": "h", "y": -0.12})
    return fig
