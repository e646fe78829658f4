"""Curvature of the sparse network's loss: Hessian trace (Hutchinson) and top eigenvalue.

The paper measures no Hessian; these are the standard flatness numbers one would put next to its
interpolation and 1-D loss curves. Both work only through Hessian-vector products (HVPs) of the
*masked* loss (see `functional.py`), so the Hessian is that of the sparse network: its rows and
columns at pruned coordinates are zero, probes live on the unpruned coordinates only, and a pruned
weight never contributes curvature.

Which parameters: by default (``scope="mask"``) the masked, prunable weights -- the same set the
paper's learning distance is measured on; biases, BatchNorm and never-pruned layers are held fixed.
``scope="weights"`` adds every other conv/linear weight, ``scope="all"`` every parameter.

HVPs use torch.func: forward-over-reverse (``jvp`` of ``grad``, default) or reverse-over-reverse
(``vjp`` of ``grad``), with probes batched by ``vmap`` and the data optionally chunked (the HVPs of
chunks are summed with weights, so memory is bounded by one chunk times ``batch_probes``).
Loss: mean cross-entropy over the data given, model in eval mode.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import grad, jvp, vjp, vmap

from sddlab.analyses.math.eigen import largest_eigenvalue
from sddlab.analyses.math.functional import (
    Criterion,
    Mask,
    Params,
    Scope,
    analysed_names,
    check_mask,
    flatten,
    iter_chunks,
    make_loss,
    n_chunks,
    support,
    unflatten,
)

HvpMode = Literal["forward", "reverse"]


@dataclass(frozen=True)
class HessianOperator:
    """The masked Hessian as a linear map on flat vectors of the analysed parameters (in the model's order).

    ``matvec(V)`` takes a ``[B, P]`` batch of vectors and returns ``H V^T`` as ``[B, P]``;
    ``support`` is the 0/1 vector of unpruned coordinates.
    """

    support: Tensor
    matvec: Callable[[Tensor], Tensor]

    @property
    def dim(self) -> int:
        return int(self.support.numel())


def _hvp_forward(loss: Callable[[Params], Tensor], params: Params, v: Params) -> Params:
    return jvp(grad(loss), (params,), (v,))[1]


def hessian_operator(
    model: nn.Module,
    mask: Mask | None,
    x: Tensor,
    y: Tensor,
    *,
    scope: Scope = "mask",
    batch_size: int | None = None,
    mode: HvpMode = "forward",
    criterion: Criterion = F.cross_entropy,
) -> HessianOperator:
    """Build the masked-Hessian operator of the mean loss over (x, y) at the model's current weights."""
    check_mask(model, mask)
    names = analysed_names(model, mask, scope)
    all_params = dict(model.named_parameters())
    params = {name: all_params[name].detach() for name in names}
    chunks = [(make_loss(model, mask, xb, yb, names, criterion), w) for xb, yb, w in iter_chunks(x, y, batch_size)]
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode={mode!r} is not 'forward' or 'reverse'")

    def matvec(vectors: Tensor) -> Tensor:
        batch = unflatten(vectors.to(dtype=next(iter(params.values())).dtype), params, names)
        total: Tensor | None = None
        for loss, weight in chunks:
            if mode == "forward":
                hv = vmap(functools.partial(_hvp_forward, loss, params))(batch)
            else:
                _, pullback = vjp(grad(loss), params)
                hv = vmap(pullback)(batch)[0]
            flat = flatten(hv, names, batch_dims=1) * weight
            total = flat if total is None else total + flat
        assert total is not None
        return total

    return HessianOperator(flatten(support(model, mask, names), names), matvec)


def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _rademacher(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return torch.randint(0, 2, shape, generator=generator).to(torch.float64) * 2.0 - 1.0


def hessian_trace(
    model: nn.Module,
    mask: Mask | None,
    x: Tensor,
    y: Tensor,
    *,
    probes: int = 100,
    batch_probes: int = 10,
    generator: torch.Generator | None = None,
    scope: Scope = "mask",
    batch_size: int | None = None,
    mode: HvpMode = "forward",
) -> tuple[float, float]:
    """Hutchinson estimate of tr(H) of the sparse network's loss: returns (mean, standard error).

    Each probe ``v`` has independent Rademacher (+-1) entries on the unpruned coordinates and zeros
    on the pruned ones, so ``E[v^T H v]`` is the trace over the weights the network has. Probes are
    drawn on the CPU from ``generator`` (default: a fresh generator seeded 0, so calls repeat) and
    processed ``batch_probes`` at a time with ``vmap``. The standard error is the sample standard
    deviation of ``v^T H v`` over ``sqrt(probes)`` (NaN with a single probe).
    Cost: ``probes`` HVPs (see `estimate_cost`).
    """
    if probes < 1 or batch_probes < 1:
        raise ValueError("probes and batch_probes must be at least 1")
    op = hessian_operator(model, mask, x, y, scope=scope, batch_size=batch_size, mode=mode)
    gen = _generator(generator)
    device = op.support.device
    samples = []
    for start in range(0, probes, batch_probes):
        b = min(batch_probes, probes - start)
        v = _rademacher((b, op.dim), gen).to(device=device, dtype=op.support.dtype) * op.support
        hv = op.matvec(v)
        samples.append((v * hv).sum(dim=1).to(torch.float64))
    values = torch.cat(samples)
    mean = float(values.mean())
    stderr = float(values.std(correction=1) / math.sqrt(probes)) if probes > 1 else math.nan
    return mean, stderr


def top_eigenvalue(
    model: nn.Module,
    mask: Mask | None,
    x: Tensor,
    y: Tensor,
    *,
    iters: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    method: Literal["power", "lanczos"] = "power",
    scope: Scope = "mask",
    batch_size: int | None = None,
    mode: HvpMode = "forward",
) -> float:
    """Largest (algebraic) eigenvalue of the sparse network's loss Hessian.

    ``method="power"`` (default, memory of two vectors): power iteration from a Gaussian start on the
    unpruned coordinates, stopped when the Rayleigh quotient changes by at most ``tol`` relative or
    after ``iters`` HVPs. Plain power iteration finds the eigenvalue of largest *magnitude*; if that
    is negative, a second run on ``H - lambda I`` recovers the largest one (so at most ``2 * iters``
    HVPs). ``method="lanczos"``: Lanczos with full reorthogonalisation, usually far fewer HVPs but it
    keeps up to ``iters`` vectors in memory. Both start from ``generator`` (default: seeded 0).
    Pruned coordinates are excluded, so their zero eigenvalues never appear.
    """
    if iters < 1:
        raise ValueError("iters must be at least 1")
    op = hessian_operator(model, mask, x, y, scope=scope, batch_size=batch_size, mode=mode)
    gen = _generator(generator)
    start = torch.randn(op.dim, generator=gen, dtype=torch.float64)
    start = start.to(device=op.support.device, dtype=op.support.dtype) * op.support
    if float(start.norm()) == 0.0:
        return 0.0  # everything pruned: the Hessian on the (empty) support is zero
    return largest_eigenvalue(op.matvec, start, iters, tol, method)


@dataclass(frozen=True)
class CurvatureCost:
    """Work a curvature call will do, to print before starting it.

    ``hvps``: Hessian-vector products (upper bound for iterative eigen-solvers); ``sweeps``: vmapped
    passes over the data, each one forward plus double backward over one chunk for up to
    ``batch_probes`` vectors; ``example_passes``: examples times HVPs, a rough proxy for time
    (one HVP costs about 3-5 forward passes).
    """

    hvps: int
    sweeps: int
    example_passes: int

    def __str__(self) -> str:
        return f"{self.hvps} Hessian-vector products in {self.sweeps} sweeps ({self.example_passes:,} example-HVPs)"


def estimate_cost(
    n_examples: int,
    *,
    probes: int = 0,
    batch_probes: int = 10,
    eig_iters: int = 0,
    method: Literal["power", "lanczos"] = "power",
    batch_size: int | None = None,
) -> CurvatureCost:
    """Cost of `hessian_trace` with ``probes`` probes plus `top_eigenvalue` with ``eig_iters`` iterations.

    Power iteration is counted at its worst case, two runs (see `top_eigenvalue`).
    """
    chunks = n_chunks(n_examples, batch_size)
    eig_hvps = eig_iters * (2 if method == "power" else 1)
    hvps = probes + eig_hvps
    sweeps = (math.ceil(probes / max(batch_probes, 1)) + eig_hvps) * chunks
    return CurvatureCost(hvps=hvps, sweeps=sweeps, example_passes=hvps * n_examples)
