"""Masks and pruning: magnitude, gradient and random scores, global or layerwise, nested levels."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from sddlab.errors import ConfigError

Mask = dict[str, torch.Tensor]  # parameter name -> bool tensor (True = kept)


def dense_mask(model: nn.Module, names: Iterable[str]) -> Mask:
    """All-True mask over the named parameters."""
    params = dict(model.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in names}


def remaining(mask: Mask) -> int:
    return int(sum(int(m.sum()) for m in mask.values()))


def total(mask: Mask) -> int:
    return int(sum(m.numel() for m in mask.values()))


def sparsity_fields(mask: Mask, ignored_weights: int) -> dict[str, float | int]:
    """A level record's size columns: sparsity and remaining weights, of the prunable weights and (paper's
    convention) of all linear/conv weights, never-pruned layers counted."""
    kept, size = remaining(mask), total(mask)
    return {
        "sparsity": 1.0 - kept / size,
        "remaining": kept,
        "sparsity_paper": 1.0 - (kept + ignored_weights) / (size + ignored_weights),
        "remaining_paper": kept + ignored_weights,
    }


def sparsity(mask: Mask) -> float:
    """Fraction of the prunable weights that are pruned."""
    return 1.0 - remaining(mask) / max(total(mask), 1)


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mask) -> None:
    """Zero the pruned weights in place."""
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        params[name].mul_(keep.to(params[name].dtype))


def count_to_prune(fraction: float, alive: int, ignored: int = 0, count: str = "prunable") -> int:
    """How many of `alive` prunable weights one level removes.

    prunable: ⌈fraction · alive⌉. official (the paper's code, OpenLTH's sparse_global): the never-pruned
    weights count too, k = ⌈fraction · (alive + ignored)⌉, and its `|w| > sorted[k]` threshold removes
    one more (ties with that weight aside), so the total left is ≈ (1 − fraction)^L of all weights.
    """
    if count == "official":
        return min(alive, math.ceil(round(fraction * (alive + ignored), 9)) + 1)
    return min(alive, math.ceil(round(fraction * alive, 9)))


def planned_remaining(total: int, fraction: float, levels: int, ignored: int = 0, count: str = "prunable") -> list[int]:
    """Prunable weights left at levels 0..levels of iterative pruning (global scope)."""
    left = [total]
    for _ in range(levels):
        left.append(left[-1] - count_to_prune(fraction, left[-1], ignored, count))
    return left


def _prune_lowest(scores: torch.Tensor, alive: torch.Tensor, count: int) -> torch.Tensor:
    """Keep-mask (flat) that removes exactly `count` alive entries with the lowest scores."""
    keep = alive.clone()
    if count <= 0:
        return keep
    candidates = torch.where(alive, scores, torch.full_like(scores, math.inf))
    # stable order so ties resolve by position, identically on every run
    order = torch.sort(candidates, stable=True).indices[:count]
    keep[order] = False
    return keep


def check_levels(levels: int, total: int, fraction: float, ignored: int = 0, count: str = "prunable") -> None:
    """Refuse iterative levels that would leave no prunable weight (the official count removes one more)."""
    left = planned_remaining(total, fraction, levels, ignored, count)
    if left[-1] <= 0:
        last = next(level for level, kept in enumerate(left) if kept <= 0) - 1
        raise ConfigError("experiment.levels", levels,
                          f"at most {last} with pruning.count={count} (level {last + 1} would leave no weight)")


def prune_mask(scores: dict[str, torch.Tensor], mask: Mask, fraction: float, scope: str,
               ignored: int = 0, count: str = "prunable") -> Mask:
    """The next, nested mask: remove `fraction` of each scope's remaining weights by lowest score.

    `ignored` (weights of never-pruned layers) and `count` choose the global count (see count_to_prune).
    """
    names = list(mask)
    if scope == "layerwise":
        new: Mask = {}
        for name in names:
            alive = mask[name].flatten()
            removed = count_to_prune(fraction, int(alive.sum()))
            new[name] = _prune_lowest(scores[name].flatten().double(), alive, removed).view_as(mask[name])
        return new
    alive = torch.cat([mask[name].flatten() for name in names])
    flat_scores = torch.cat([scores[name].flatten().double().to(alive.device) for name in names])
    keep = _prune_lowest(flat_scores, alive, count_to_prune(fraction, int(alive.sum()), ignored, count))
    new, offset = {}, 0
    for name in names:
        size = mask[name].numel()
        new[name] = keep[offset : offset + size].view_as(mask[name])
        offset += size
    return new


def magnitude_scores(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name].detach().abs() for name in mask}


def random_scores(mask: Mask, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {name: torch.rand(m.shape, generator=generator).to(m.device) for name, m in mask.items()}


def gradient_scores(
    model: nn.Module, mask: Mask, loss_fn: Callable[[nn.Module], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """|w · ∂L/∂w| on one batch (the loss closure), for the current masked weights."""
    params = dict(model.named_parameters())
    model.zero_grad(set_to_none=True)
    loss_fn(model).backward()
    scores = {name: (params[name].detach() * params[name].grad).abs() for name in mask}
    model.zero_grad(set_to_none=True)
    return scores
