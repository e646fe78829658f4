"""Linear interpolation between two solutions (the paper's sparse vs "re-dense" flatness check).

``w(alpha) = (1 - alpha) w_a + alpha w_b`` for every floating-point entry of the two state dicts,
*buffers included*: BatchNorm running means and variances are interpolated linearly too (the default,
cheap and deterministic). Linearly mixed statistics are not the statistics of the mixed network, so
``bn_recalibrate`` optionally recomputes them for every alpha from given inputs (cumulative average
over the whole tensor, only BatchNorm layers in train mode) before evaluating. Integer buffers
(``num_batches_tracked``) are taken from the nearer endpoint. The formula is written so that alpha 0
and 1 reproduce the endpoints bit for bit. The model passed in is only used as a template: it is never
modified (evaluation goes through ``functional_call``; recalibration works on a copy).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from sddlab.analyses.math.functional import iter_chunks
from sddlab.metrics import evaluate

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.round(np.arange(0, 1.0001, 0.01), 2))


def _model_keys(model: nn.Module) -> list[str]:
    """Names of the parameters and persistent buffers (the state-dict keys)."""
    return list(model.state_dict().keys())


def interpolate_state(a: Mapping[str, Tensor], b: Mapping[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """``(1 - alpha) a + alpha b`` entry by entry; non-float entries come from the nearer endpoint."""
    if set(a) != set(b):
        raise KeyError(f"states differ in keys: {sorted(set(a) ^ set(b))[:5]}")
    out = {}
    for name, ta in a.items():
        tb = b[name]
        if ta.shape != tb.shape:
            raise ValueError(f"{name}: shapes {tuple(ta.shape)} and {tuple(tb.shape)} differ")
        if ta.is_floating_point():
            out[name] = (1.0 - alpha) * ta + alpha * tb.to(device=ta.device, dtype=ta.dtype)
        else:
            out[name] = ta if alpha < 0.5 else tb.to(ta.device)
    return out


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: Tensor, batch_size: int | None = None) -> None:
    """Recompute every BatchNorm's running statistics in place as the average over the inputs ``x``.

    Only BatchNorm layers run in train mode (dropout etc. stay in eval mode); the model is left in
    eval mode. Each chunk's batch statistics are averaged with equal weight (exact for equal chunks).
    """
    layers = _batchnorms(model)
    model.eval()
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average
        layer.train()
    try:
        for xb, _, _ in iter_chunks(x, torch.zeros(len(x)), batch_size):
            model(xb)
    finally:
        for layer, momentum in zip(layers, momenta, strict=False):
            layer.momentum = momentum
            layer.eval()


def interpolate(
    model_a_state: Mapping[str, Tensor],
    model_b_state: Mapping[str, Tensor],
    model: nn.Module,
    evaluate_sets: Mapping[str, tuple[Tensor, Tensor]],
    alphas: Iterable[float] = DEFAULT_ALPHAS,
    *,
    batch_size: int | None = None,
    bn_recalibrate: Tensor | None = None,
) -> pd.DataFrame:
    """Loss and accuracy of the interpolated network on each named set: DataFrame(alpha, split, loss, acc).

    ``model_a_state`` / ``model_b_state`` are state dicts of ``model``'s architecture (alpha 0 is a,
    alpha 1 is b); keys the model does not have are ignored, keys it has must be in both. Loss is
    mean cross-entropy, the model in eval mode. With ``bn_recalibrate`` (inputs, e.g. training
    images) BatchNorm statistics are recomputed for each alpha instead of interpolated.
    """
    keys = _model_keys(model)
    missing = [k for k in keys if k not in model_a_state or k not in model_b_state]
    if missing:
        raise KeyError(f"state dicts lack model entries: {missing[:5]}")
    a = {k: model_a_state[k].detach() for k in keys}
    b = {k: model_b_state[k].detach() for k in keys}
    work = copy.deepcopy(model) if bn_recalibrate is not None else model
    rows = []
    for alpha in alphas:
        state = interpolate_state(a, b, float(alpha))
        if bn_recalibrate is not None:
            work.load_state_dict(state, strict=False)
            recalibrate_batchnorm(work, bn_recalibrate, batch_size)
            state = {k: v.detach().clone() for k, v in work.state_dict().items() if k in state}
        for split, (x, y) in evaluate_sets.items():
            result = evaluate(work, x, y, state=state, chunk=batch_size)
            rows.append({"alpha": float(alpha), "split": split, "loss": result.loss, "acc": result.acc})
    return pd.DataFrame(rows, columns=["alpha", "split", "loss", "acc"])
