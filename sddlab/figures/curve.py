"""Figures of level tables: the sparse-double-descent curve, comparisons of runs, and the phases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sddlab.figures.axis import remaining_fraction, shade_phases, sparsity_axis
from sddlab.figures.theme import PALETTE, PHASES, SERIES, TEMPLATE
from sddlab.phases import PhaseReport

ACCURACY_SERIES = tuple((column, SERIES[column].label, SERIES[column].colour)
                        for column in ("test_acc", "train_acc_noisy", "memorized"))
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "pentagon", "hexagon", "star-square")
DISTANCE_SERIES = (("learning_distance", SERIES["learning_distance"].label, SERIES["learning_distance"].colour),)


def shown_value(value: object) -> object:
    """A value for a label: as it is, a missing one (None or NaN, e.g. data.subset=null) as 'None'."""
    return "None" if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _aggregate(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean and std over seeds (or runs) per level, with its x coordinate; std is 0 for a single run."""
    grouped = table.groupby("level")
    out = pd.DataFrame({"remaining": grouped["remaining"].mean(), "sparsity": grouped["sparsity"].mean()})
    out["mean"] = grouped[column].mean()
    out["std"] = grouped[column].std().fillna(0.0)
    out["n"] = grouped[column].count()
    out = out.reset_index()
    out["x"] = remaining_fraction(out["sparsity"])
    return out


def _band(fig: go.Figure, agg: pd.DataFrame, label: str, color: str, row: int, column: str = "") -> None:
    """A mean line with markers, and a ± std band when several runs share a level."""
    hover = "level %{customdata[0]}<br>sparsity %{customdata[1]:.2%}<br>remaining %{customdata[2]}<br>%{y:.4f}"
    custom = np.stack([agg["level"], agg["sparsity"], agg["remaining"].round()], axis=1)
    if (agg["n"] > 1).any():
        upper, lower = agg["mean"] + agg["std"], agg["mean"] - agg["std"]
        fig.add_trace(
            go.Scatter(x=pd.concat([agg["x"], agg["x"][::-1]]), y=pd.concat([upper, lower[::-1]]),
                       fill="toself", fillcolor=color, opacity=0.18, line={"width": 0}, hoverinfo="skip",
                       showlegend=False, legendgroup=label),
            row=row, col=1,
        )
    style = SERIES.get(column)
    fig.add_trace(
        go.Scatter(x=agg["x"], y=agg["mean"], mode="lines+markers", name=label,
                   line={"color": color, "dash": style.dash if style else "solid"},
                   marker={"symbol": style.symbol if style else "circle"}, meta=column,
                   customdata=custom, hovertemplate=hover + f"<extra>{label}</extra>", legendgroup=label),
        row=row, col=1,
    )


def _mark_diverged(fig: go.Figure, table: pd.DataFrame) -> None:
    """A dotted line at each diverged level; its measurements are missing, so the curves show a gap there."""
    if "diverged" not in table:
        return
    diverged = table[table["diverged"].notna()].drop_duplicates("level")
    for x, level in zip(remaining_fraction(diverged["sparsity"]), diverged["level"], strict=True):
        fig.add_vline(x=float(x), line_dash="dot", line_color="#7f7f7f", row=1, col=1,
                      annotation_text=f"level {int(level)} diverged", annotation_position="top")


def curve_figure(table: pd.DataFrame, title: str = "Sparse double descent", phases: PhaseReport | None = None,
                 subtitle: str = "") -> go.Figure:
    """Accuracies (top) and learning distance (bottom) on the shared sparsity axis.

    Several runs or seeds in `table` are shown as mean ± std bands; `phases` (from `detect_phases`)
    shades the light, critical, sweet and collapsed phases.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06)
    for row, series in ((1, ACCURACY_SERIES), (2, DISTANCE_SERIES)):
        for column, label, color in series:
            if column in table and table[column].notna().any():
                _band(fig, _aggregate(table, column), label, color, row=row, column=column)
    sparsity_axis(fig, title=False, row=1)
    sparsity_axis(fig, row=2)
    fig.update_yaxes(title_text="accuracy / fraction", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="learning distance", row=2, col=1)
    if phases is not None:
        shade_phases(fig, phases, rows=(1, 2))
    _mark_diverged(fig, table)
    heading = f"{title}<br><sup>{subtitle}</sup>" if subtitle else title
    fig.update_layout(title=heading, template=TEMPLATE, height=680, hovermode="x unified",
                      legend={"orientation": "h", "y": -0.15})
    return fig


def comparison_figure(table: pd.DataFrame, by: str, title: str = "", column: str = "test_acc") -> go.Figure:
    """One curve per value of `by` (e.g. 'noise.rate'; a missing value is a curve 'None', last): `column` solid,
    noisy-train accuracy dotted."""
    fig = go.Figure()
    for index, (_, group) in enumerate(table.groupby(by, sort=True, dropna=False)):
        value = shown_value(group[by].iloc[0])  # as given (100, not the group key's 100.0 beside a None)
        color, symbol = PALETTE[index % len(PALETTE)], SYMBOLS[index % len(SYMBOLS)]  # not colour alone
        agg = _aggregate(group, column)
        fig.add_trace(go.Scatter(x=agg["x"], y=agg["mean"], mode="lines+markers", name=f"{by}={value}",
                                 line={"color": color}, marker={"symbol": symbol}, legendgroup=str(value),
                                 error_y={"type": "data", "array": agg["std"], "visible": bool((agg["n"] > 1).any())}))
        if "train_acc_noisy" in group:
            train = _aggregate(group, "train_acc_noisy")
            fig.add_trace(go.Scatter(x=train["x"], y=train["mean"], mode="lines", showlegend=False,
                                     line={"color": color, "dash": "dot"}, legendgroup=str(value),
                                     name=f"{by}={value} train (noisy)"))
    sparsity_axis(fig)
    fig.update_yaxes(title_text=f"{column} (solid), noisy-train accuracy (dotted)", range=[0, 1.02])
    fig.update_layout(title=title, template=TEMPLATE, height=480)
    return fig


def phase_figure(report: PhaseReport, title: str | None = None) -> go.Figure:
    """Test and noisy-train accuracy on the sparsity axis, phases shaded, landmarks marked."""
    frame = report.to_frame()
    x = remaining_fraction(frame["sparsity"])
    hover = [f"level {lv}<br>sparsity {100 * s:.2f} %" for lv, s in zip(frame["level"], frame["sparsity"], strict=True)]
    fig = go.Figure()
    errors = frame["test_se"].to_numpy() if report.n_seeds > 1 else None
    for column, extra in (
        ("test_acc", {"error_y": None if errors is None else {"type": "data", "array": errors, "visible": True}}),
        ("train_acc_noisy", {}),
    ):
        style = SERIES[column]
        fig.add_trace(go.Scatter(x=x, y=frame[column], mode="lines+markers", name=style.label, text=hover, meta=column,
                                 line={"color": style.colour, "dash": style.dash}, marker={"symbol": style.symbol},
                                 hovertemplate=f"%{{text}}<br>{style.label} %{{y:.4f}}<extra></extra>", **extra))
    shade_phases(fig, report)  # after the test-accuracy trace: its points take their phase's marker
    for name, landmark, phase in (("critical minimum", report.critical, "critical"),
                                  ("sweet peak", report.sweet, "sweet"), ("collapse", report.collapse, "collapsed")):
        if landmark is not None:
            fig.add_trace(go.Scatter(x=remaining_fraction([landmark.sparsity]), y=[landmark.test_acc], mode="markers",
                                     name=name, marker={"symbol": PHASES[phase].symbol, "size": 16, "color": "black",
                                                        "line": {"color": "white", "width": 1}}))
    sparsity_axis(fig)
    fig.update_yaxes(title="accuracy")
    fig.update_layout(title=title or report.summary.split(":")[0], hovermode="closest", template=TEMPLATE,
                      legend={"orientation": "h", "y": -0.2})
    return fig
