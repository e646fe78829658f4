"""Evaluate a model as a pure function of its masked parameters.

Every analysis in this subpackage looks at the *sparse* network: the weights a mask prunes are held
at exactly zero. Rather than relying on the stored weights being zero, the helpers here call the model
through `torch.func.functional_call` with parameters `w * m`. That makes the sparse network the object
being differentiated: the gradient (and every Hessian row and column) of a pruned coordinate is zero,
so curvature estimates never leak into weights the network does not have.

All evaluation is in eval mode (BatchNorm uses its running statistics and never updates them, dropout
is off); the model's own parameters, buffers and train/eval flag are left exactly as they were.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from sddlab.metrics import eval_mode

Mask = Mapping[str, Tensor]
Params = dict[str, Tensor]
Criterion = Callable[[Tensor, Tensor], Tensor]
Scope = Literal["mask", "weights", "all"]

SCOPES: tuple[str, ...] = ("mask", "weights", "all")


def analysed_names(model: nn.Module, mask: Mask | None, scope: Scope = "mask") -> list[str]:
    """The parameter names an analysis differentiates with respect to, in the model's order.

    - ``"mask"`` (default): the masked (prunable) parameters only, the same set the learning distance
      is defined on; biases, BatchNorm and never-pruned layers stay fixed.
    - ``"weights"``: every parameter with two or more dimensions (conv/linear weights, pruned or not).
    - ``"all"``: every trainable parameter.
    """
    mask = mask or {}
    params = dict(model.named_parameters())
    unknown = sorted(set(mask) - set(params))
    if unknown:
        raise KeyError(f"mask names not among the model's parameters: {', '.join(unknown)}")
    if scope == "mask":
        names = [name for name in params if name in mask]
        if not names:
            raise ValueError("scope='mask' needs a non-empty mask; use scope='weights' or 'all' for a dense model")
    elif scope == "weights":
        names = [name for name, p in params.items() if p.ndim >= 2]
    elif scope == "all":
        names = [name for name, p in params.items() if p.requires_grad]
    else:
        raise ValueError(f"scope={scope!r} is not one of {SCOPES}")
    return names


def check_mask(model: nn.Module, mask: Mask | None) -> None:
    """Raise if a mask entry names no parameter, is not boolean, or has the wrong shape."""
    params = dict(model.named_parameters())
    for name, m in (mask or {}).items():
        if name not in params:
            raise KeyError(f"mask entry {name!r} is not a parameter of the model")
        if m.dtype != torch.bool:
            raise TypeError(f"mask entry {name!r} has dtype {m.dtype}, expected torch.bool")
        if tuple(m.shape) != tuple(params[name].shape):
            raise ValueError(f"mask entry {name!r} has shape {tuple(m.shape)}, parameter {tuple(params[name].shape)}")


def support(model: nn.Module, mask: Mask | None, names: Sequence[str]) -> Params:
    """For each name, a 0/1 tensor (parameter dtype and device) of the coordinates that exist."""
    params = dict(model.named_parameters())
    mask = mask or {}
    out: Params = {}
    for name in names:
        p = params[name]
        m = mask.get(name)
        out[name] = torch.ones_like(p) if m is None else m.to(device=p.device, dtype=p.dtype)
    return out


def masked_state(model: nn.Module, mask: Mask | None) -> tuple[Params, Params]:
    """Detached copies-by-reference of (parameters with the mask applied, buffers)."""
    mask = mask or {}
    params = {}
    for name, p in model.named_parameters():
        w = p.detach()
        params[name] = w * mask[name].to(w.device) if name in mask else w
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    return params, buffers


def iter_chunks(x: Tensor, y: Tensor, batch_size: int | None) -> Iterator[tuple[Tensor, Tensor, float]]:
    """Split (x, y) into consecutive chunks; yields (x_chunk, y_chunk, weight = chunk size / total)."""
    n = len(x)
    if n == 0 or len(y) != n:
        raise ValueError(f"need non-empty x and y of equal length, got {len(x)} and {len(y)}")
    size = n if batch_size is None else int(batch_size)
    if size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, n, size):
        xb, yb = x[start : start + size], y[start : start + size]
        yield xb, yb, len(xb) / n


def n_chunks(n_examples: int, batch_size: int | None) -> int:
    """How many chunks `iter_chunks` yields for `n_examples` examples."""
    return 1 if batch_size is None else math.ceil(n_examples / batch_size)


def make_loss(
    model: nn.Module,
    mask: Mask | None,
    x: Tensor,
    y: Tensor,
    names: Sequence[str],
    criterion: Criterion = F.cross_entropy,
) -> Callable[[Params], Tensor]:
    """A pure closure ``loss(params) -> scalar`` over the data (x, y), for use with torch.func.

    ``params`` maps each of ``names`` to a tensor; the mask is applied inside the closure, so the
    gradient with respect to a pruned coordinate is exactly zero. Every other parameter and buffer is
    held at the model's current (masked) value. The model runs in eval mode: no BatchNorm update.
    """
    fixed, buffers = masked_state(model, mask)
    for name in names:
        fixed.pop(name)
    masks = support(model, mask, [name for name in names if mask and name in mask])

    def loss(params: Params) -> Tensor:
        full = dict(fixed)
        for name in names:
            full[name] = params[name] * masks[name] if name in masks else params[name]
        full.update(buffers)
        with eval_mode(model):
            out = functional_call(model, full, (x,))
        return criterion(out, y)

    return loss


def flatten(tensors: Mapping[str, Tensor], names: Sequence[str], batch_dims: int = 0) -> Tensor:
    """Concatenate the named tensors into one vector (keeping ``batch_dims`` leading dimensions)."""
    return torch.cat([tensors[name].flatten(batch_dims) for name in names], dim=batch_dims)


def unflatten(vector: Tensor, like: Mapping[str, Tensor], names: Sequence[str]) -> Params:
    """Inverse of `flatten`: split the last dimension of ``vector`` into tensors shaped like ``like``."""
    out: Params = {}
    lead = vector.shape[:-1]
    offset = 0
    for name in names:
        shape = like[name].shape
        size = like[name].numel()
        out[name] = vector[..., offset : offset + size].reshape(*lead, *shape)
        offset += size
    if offset != vector.shape[-1]:
        raise ValueError(f"vector has {vector.shape[-1]} entries, the parameters {offset}")
    return out
