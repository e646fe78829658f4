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

import pandas as pd
import torch

from sddlab.analyses.cache import AnalysisCache, AnalysisResult
from sddlab.analyses.levels import AnalysedRun, OpenedLevel, as_run
from sddlab.figures.panels import distance_figure, layer_figure

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


def _rows(opened: OpenedLevel, squares: dict[str, dict[str, float]]) -> list[dict]:
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
                "level": opened.level,
                "sparsity": opened.sparsity,
                "test_acc": opened.record["test_acc"],
                "layer": layer,
                "remaining": int(remaining),
                "layer_sparsity": 1.0 - remaining / part["total"],
                "variant": variant,
                "distance": values[variant],
            })
    return rows


def layer_rows(table: pd.DataFrame, variant: str = "distance_init") -> pd.DataFrame:
    """The per-layer rows of one variant (the network-wide rows left out)."""
    return table[(table["variant"] == variant) & (table["layer"] != ALL_LAYERS)]


def wide(table: pd.DataFrame, layer: str = ALL_LAYERS) -> pd.DataFrame:
    """One row per level, a column per variant (default: the network-wide values)."""
    part = table[table["layer"] == layer]
    out = part.pivot_table(index=["level", "sparsity", "test_acc"], columns="variant", values="distance")
    out = out.reset_index()
    out.columns.name = None
    return out[["level", "sparsity", "test_acc", *[v for v in VARIANTS if v in out.columns]]]


def distance(run: AnalysedRun | str | Path, levels: list[int] | None = None, *, progress: bool = True,
             data_dir: str | Path | None = None, device: str = "auto") -> AnalysisResult:
    """Learning-distance variants of the given (default: all finished) levels; no data, no training."""
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    cache = AnalysisCache(run.dir, "distance", {"version": 1})
    init, rewind = run.init_state(), run.rewind_state()

    def compute(opened: OpenedLevel) -> list[dict]:
        squares = {name: _squares(init[name], rewind[name], opened.weights[name], keep)
                   for name, keep in opened.mask.items()}
        return _rows(opened, squares)

    table = run.per_level(cache, levels, compute, desc="distance", progress=progress)
    network = wide(table)
    return AnalysisResult("distance", table, distance_figure(network, VARIANTS, run.config.name), cache.dir,
                          summary=f"learning distance: {len(levels)} levels, {len(VARIANTS)} variants",
                          compact=network, extra={"wide": network,
                                 "distance_layers": layer_figure(layer_rows(table), "distance_init")})
