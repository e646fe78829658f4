"""Learning distance D = ||w_init - w_learned||_2 (the paper's second claim).

Per the paper: over the prunable weights, pruned weights counted as zero in the learned network, and
``w_init`` the *original dense initialisation* (not the rewound point). By default the initial
weights are taken unmasked, so a pruned coordinate contributes ``w_init**2`` (it moved from its
initial value to zero). ``mask_init=True`` measures only within the surviving sub-network instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor


def learning_distance(
    init_state: Mapping[str, Tensor],
    learned_state: Mapping[str, Tensor],
    mask: Mapping[str, Tensor],
    names: Iterable[str] | None = None,
    *,
    mask_init: bool = False,
) -> float:
    """Euclidean distance between initial and learned masked weights over ``names`` (default: the mask's keys)."""
    chosen = list(mask) if names is None else list(names)
    if not chosen:
        raise ValueError("no parameters to measure: pass a non-empty mask or names")
    total = 0.0
    for name in chosen:
        w0 = init_state[name].detach().to(torch.float64).cpu()
        w1 = learned_state[name].detach().to(torch.float64).cpu()
        if w0.shape != w1.shape:
            raise ValueError(f"{name}: shapes {tuple(w0.shape)} and {tuple(w1.shape)} differ")
        m = mask.get(name)
        if m is not None:
            m = m.cpu()
            w1 = w1 * m
            if mask_init:
                w0 = w0 * m
        total += float(((w0 - w1) ** 2).sum())
    return math.sqrt(total)
