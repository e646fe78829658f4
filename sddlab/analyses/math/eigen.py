"""Largest eigenvalue of a symmetric linear operator given only as a batched matrix-vector product.

The operator is ``matvec(V) -> V H^T`` on a ``[B, P]`` batch of vectors (here the masked Hessian of
`hessian`, but nothing in this module knows about networks). Power iteration needs two vectors of
memory; Lanczos with full reorthogonalisation converges in far fewer products but keeps its basis.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def power_iteration(
    matvec: Callable[[Tensor], Tensor], v: Tensor, iters: int, tol: float, shift: float
) -> tuple[float, int]:
    """Dominant eigenvalue of (H - shift I) by power iteration with Rayleigh quotients, and the products used."""
    v = v / v.norm()
    value = math.nan
    for step in range(1, iters + 1):
        hv = matvec(v[None])[0] - shift * v
        new = float(v @ hv)
        norm = hv.norm()
        if float(norm) == 0.0:
            return new, step
        v = hv / norm
        if not math.isnan(value) and abs(new - value) <= tol * abs(new):
            return new, step
        value = new
    return value, iters


def lanczos(matvec: Callable[[Tensor], Tensor], v: Tensor, iters: int, tol: float) -> float:
    """Largest eigenvalue by Lanczos with full reorthogonalisation (stores up to ``iters`` vectors)."""
    basis = [v / v.norm()]
    alphas: list[float] = []
    betas: list[float] = []
    value = math.nan
    for k in range(iters):
        w = matvec(basis[k][None])[0]
        alphas.append(float(basis[k] @ w))
        q = torch.stack(basis)
        for _ in range(2):  # twice is enough in floating point ("twice is enough", Kahan/Parlett)
            w = w - q.T @ (q @ w)
        t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            t += torch.diag(off, 1) + torch.diag(off, -1)
        new = float(torch.linalg.eigvalsh(t)[-1])
        converged = not math.isnan(value) and abs(new - value) <= tol * abs(new)
        value = new
        beta = float(w.norm())
        if converged or beta <= 1e-10 * max(1.0, abs(value)) or k + 1 == min(iters, v.numel()):
            break
        betas.append(beta)
        basis.append(w / beta)
    return value


def largest_eigenvalue(
    matvec: Callable[[Tensor], Tensor], start: Tensor, iters: int, tol: float, method: str
) -> float:
    """Largest algebraic eigenvalue of the symmetric operator ``matvec`` (batched ``[B, P]`` in/out)."""
    if method == "lanczos":
        return lanczos(matvec, start, iters, tol)
    if method != "power":
        raise ValueError(f"method={method!r} is not 'power' or 'lanczos'")
    value, _ = power_iteration(matvec, start, iters, tol, shift=0.0)
    if value < 0:  # the dominant eigenvalue is negative: the largest one is dominant for H - value * I
        shifted, _ = power_iteration(matvec, start, iters, tol, shift=value)
        value = shifted + value
    return value
