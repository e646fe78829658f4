"""Learning-distance variants per level, network-wide and per layer, from the run's checkpoints.

Variants (all over the prunable weights, Euclidean):

- ``distance_init``: the paper's D = ||w_init - w ⊙ m||, w_init the original dense initialisation,
  every prunable coordinate counted, pruned weights as zero (equals the level record's
  ``learning_distance``).
- ``distance_init_unpruned``: ||(w_init - w) ⊙ m||, from the dense init over the unpruned weights only.
- ``distance_rewind``: ||(w_rewind - w) ⊙ m||, from the rewind point (the init when the run rewinds to
  iteration 0) over the unpruned weights: how far training moved the surviving weights.
- ``*_normalised``: the two unpruned variants divided by sqrt(remaining weights), a per-weight RMS
  movement that does not shrink merely because fewer weights are left.

The table is tidy: one row per (level, layer, variant); ``layer == "all"`` is the whole network.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from sddlab.analyses.cache import AnalysisCache, AnalysisResult, level_item
from sddlab.analyses.context import AnalysedRun, as_run

VARIANTS: tuple[str, ...] = (
    "distance_init",
    "distance_init_unpruned",
    "distance_rewind",
    "distance_init_unpruned_normalised",
    "distance_rewind_normalised",
)
ALL_LAYERS = "all"


@torch.no_grad()
def _squares(init: torch.Tensor, rewind: torch.Tensor, weights: torch.Tensor, keep: torch.Tensor) -> dict[str, float]:
    w0, wr, w = init.double().cpu(), rewind.double().cpu(), weights.double().cpu()
    m = keep.cpu().double()
    learned = w * m
    return {
        "distance_init": float(((w0 - learned) ** 2).sum()),
        "distance_init_unpruned": float((((w0 - w) * m) ** 2).sum()),
        "distance_rewind": float((((wr - w) * m) ** 2).sum()),
        "remaining": float(m.sum()),
        "total": float(m.numel()),
    }


def _rows(level: int, record: dict, squares: dict[str, dict[str, float]]) -> list[dict]:
    network = {key: sum(part[key] for part in squares.values()) for key in next(iter(squares.values()))}
    rows = []
    for layer, part in [(ALL_LAYERS, network), *squares.items()]:
        remaining = part["remaining"]
        values = {
            "distance_init": math.sqrt(part["distance_init"]),
            "distance_init_unpruned": math.sqrt(part["distance_init_unpruned"]),
            "distance_rewind": math.sqrt(part["distance_rewind"]),
        }
        root = math.sqrt(remaining) if remaining > 0 else math.nan
        values["distance_init_unpruned_normalised"] = values["distance_init_unpruned"] / root
        values["distance_rewind_normalised"] = values["distance_rewind"] / root
        for variant in VARIANTS:
            rows.append({
                "level": level,
                "sparsity": record["sparsity"],
                "test_acc": record["test_acc"],
                "layer": layer,
                "remaining": int(remaining),
                "layer_sparsity": 1.0 - remaining / part["total"],
                "variant": variant,
                "distance": values[variant],
            })
    return rows


def wide(table: pd.DataFrame, layer: str = ALL_LAYERS) -> pd.DataFrame:
    """One row per level, a column per variant (default: the network-wide values)."""
    part = table[table["layer"] == layer]
    out = part.pivot_table(index=["level", "sparsity", "test_acc"], columns="variant", values="distance")
    out = out.reset_index()
    out.columns.name = None
    return out[["level", "sparsity", "test_acc", *[v for v in VARIANTS if v in out.columns]]]


def distance(run: AnalysedRun | str | Path, levels: list[int] | None = None, *, progress: bool = True,
             data_dir: str | Path = "data", device: str = "auto") -> AnalysisResult:
    """Learning-distance variants of the given (default: all finished) levels; no data, no training."""
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    cache = AnalysisCache(run.dir, "distance", {"version": 1})
    init, rewind = run.init_state(), run.rewind_state()
    records = {int(r["level"]): r for r in run.records()}

    def compute(item: str) -> list[dict]:
        level = int(item.removeprefix("level_"))
        mask, weights = run.level_state(level)
        squares = {name: _squares(init[name], rewind[name], weights[name], keep) for name, keep in mask.items()}
        return _rows(level, records[level], squares)

    table = cache.items([level_item(lv) for lv in levels], compute, desc="distance", progress=progress)
    network = wide(table)
    return AnalysisResult("distance", table, distance_figure(table, run.config.name), cache.dir,
                          summary=f"learning distance: {len(levels)} levels, {len(VARIANTS)} variants",
                          display=network, extra={"wide": network, "distance_layers": layer_figure(table)})


def _remaining_axis(table: pd.DataFrame) -> np.ndarray:
    return np.clip(1.0 - table["sparsity"].to_numpy(dtype=float), 1e-6, None)


def distance_figure(table: pd.DataFrame, name: str = "") -> go.Figure:
    """Test accuracy (top) and every network-wide variant relative to its maximum (bottom)."""
    network = wide(table)
    x = _remaining_axis(network)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.45, 0.55])
    fig.add_trace(go.Scatter(x=x, y=network["test_acc"], mode="lines+markers", name="test accuracy",
                             customdata=network["level"], hovertemplate="level %{customdata}: %{y:.4f}"), 1, 1)
    for variant in VARIANTS:
        values = network[variant].to_numpy(dtype=float)
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        fig.add_trace(go.Scatter(x=x, y=values / (top or 1.0), mode="lines+markers", name=variant,
                                 text=[f"{v:.4g}" for v in values], customdata=network["level"],
                                 hovertemplate="level %{customdata}: %{text}"), 2, 1)
    fig.update_xaxes(type="log", autorange="reversed")
    fig.update_xaxes(title_text="fraction of prunable weights remaining", row=2, col=1)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_yaxes(title_text="distance / its maximum", row=2, col=1)
    fig.update_layout(title=f"{name}: learning distance against test accuracy".strip(": "), template="plotly_white",
                      height=640, legend={"orientation": "h", "y": -0.15})
    return fig


def layer_figure(table: pd.DataFrame, variant: str = "distance_init") -> go.Figure:
    """One line per layer of `variant` against the network's remaining fraction."""
    fig = go.Figure()
    for layer, part in table[(table["variant"] == variant) & (table["layer"] != ALL_LAYERS)].groupby("layer"):
        part = part.sort_values("level")
        fig.add_trace(go.Scatter(x=_remaining_axis(part), y=part["distance"], mode="lines+markers", name=str(layer)))
    fig.update_xaxes(type="log", autorange="reversed", title="fraction of prunable weights remaining (network)")
    fig.update_yaxes(title=variant)
    fig.update_layout(title=f"{variant} per layer", template="plotly_white")
    return fig
