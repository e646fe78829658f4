"""Filter-normalised random directions and 1-D loss curves (Li et al., NeurIPS 2018).

A random direction's scale must match the weights it perturbs, otherwise a layer with small weights
looks flat or sharp only because of its scale. Li et al. draw a Gaussian direction and rescale each
*filter* -- an output channel of a conv weight, a row (output unit) of a linear weight -- to the norm
of the corresponding weight filter. Here the weights are those of the *sparse* network: the
direction is masked (pruned weights stay exactly zero along the whole curve) and each filter is
rescaled to the norm of the masked weight filter. A filter whose masked weights are all zero gets a
zero direction. Biases and BatchNorm parameters (all one-dimensional parameters) get a zero
direction, Li et al.'s "ignore biases and BN" choice; conv/linear weights outside the mask (layers
never pruned) are perturbed like the others. Buffers (BN running statistics) are not perturbed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from sddlab.analyses.math.functional import Mask, Params, check_mask, masked_state
from sddlab.metrics import evaluate


def filter_normalised_direction(
    model: nn.Module,
    mask: Mask | None,
    *,
    generator: torch.Generator | None = None,
    names: Iterable[str] | None = None,
) -> Params:
    """A random direction for every parameter of ``model`` (zero where not perturbed).

    Perturbed: parameters with two or more dimensions (restricted to ``names`` when given). Each of
    their filters (index along dimension 0) is rescaled to the norm of the masked weight filter.
    Drawn from ``generator`` on the CPU (default: a fresh generator seeded 0), in the parameter's
    dtype and device.
    """
    check_mask(model, mask)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    chosen = None if names is None else set(names)
    params, _ = masked_state(model, mask)
    mask = mask or {}
    direction: Params = {}
    for name, w in params.items():
        if w.ndim < 2 or (chosen is not None and name not in chosen):
            direction[name] = torch.zeros_like(w)
            continue
        d = torch.randn(w.shape, generator=gen, dtype=torch.float64)
        if name in mask:
            d = d * mask[name].cpu()
        w64 = w.detach().cpu().to(torch.float64)
        weight_norm = w64.flatten(1).norm(dim=1)
        direction_norm = d.flatten(1).norm(dim=1)
        scale = torch.where(direction_norm > 0, weight_norm / direction_norm.clamp_min(1e-300), 0.0)
        d = d * scale.view(-1, *([1] * (w.ndim - 1)))
        direction[name] = d.to(device=w.device, dtype=w.dtype)
    return direction


def perturbed_params(model: nn.Module, mask: Mask | None, direction: Mapping[str, Tensor], alpha: float) -> Params:
    """The masked parameters plus ``alpha`` times the (masked) direction, by name."""
    params, _ = masked_state(model, mask)
    mask = mask or {}
    out: Params = {}
    for name, w in params.items():
        d = direction.get(name)
        if d is None:
            out[name] = w
            continue
        if name in mask:
            d = d * mask[name].to(d.device)
        out[name] = w + alpha * d.to(device=w.device, dtype=w.dtype)
    return out


def loss_curve_1d(
    model: nn.Module,
    mask: Mask | None,
    direction: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    alphas: Iterable[float] = tuple(np.round(np.linspace(-1.0, 1.0, 41), 3)),
    *,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Loss and accuracy along ``w + alpha * d`` for each alpha: DataFrame(alpha, loss, acc).

    ``w`` is the masked weights; the model runs in eval mode with its own BN statistics and is not
    modified. ``alpha = 0`` reproduces the model's own metrics.
    """
    check_mask(model, mask)
    rows = []
    for alpha in alphas:
        params = perturbed_params(model, mask, direction, float(alpha))
        result = evaluate(model, x, y, state=params, chunk=batch_size)
        rows.append({"alpha": float(alpha), "loss": result.loss, "acc": result.acc})
    return pd.DataFrame(rows, columns=["alpha", "loss", "acc"])
