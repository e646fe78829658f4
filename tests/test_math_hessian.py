"""Hessian trace and top eigenvalue of the masked loss against the exact Hessian of tiny models.

Everything runs in float64. Tolerances:
- Hessian-vector products: equal to the exact Hessian times the vector within 1e-10 (absolute).
- Hutchinson trace with 2000 probes: within 5 % of the exact trace and within 4 standard errors.
- Top eigenvalue (power iteration and Lanczos): within 1e-3 relative of the exact largest eigenvalue.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sddlab.analyses.math.eigen import largest_eigenvalue
from sddlab.analyses.math.functional import analysed_names
from sddlab.analyses.math.hessian import (
    estimate_cost,
    hessian_operator,
    hessian_trace,
    top_eigenvalue,
)

# torch's forward-mode AD imports its jvp decompositions through the deprecated torch.jit.script
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(5, 8)])
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden[0](x)))


class TinyConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.bn(self.conv(x))).flatten(1))


def _prune(model: nn.Module, mask: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in mask:
                p.mul_(mask[name])


@pytest.fixture
def mlp_case():
    torch.manual_seed(0)
    model = TinyMLP().double()
    mask = {"hidden.0.weight": torch.rand(8, 5) > 0.4, "out.weight": torch.rand(3, 8) > 0.3}
    _prune(model, mask)
    x = torch.randn(64, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (64,))
    return model, mask, x, y


@pytest.fixture
def conv_case():
    torch.manual_seed(1)
    model = TinyConvBN().double()
    with torch.no_grad():  # non-trivial running statistics, as after training
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    mask = {"conv.weight": torch.rand(3, 2, 3, 3) > 0.5, "fc.weight": torch.rand(3, 48) > 0.5}
    _prune(model, mask)
    x = torch.randn(20, 2, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (20,))
    return model, mask, x, y


def exact_hessian(model, mask, x, y, scope="mask"):
    """Reference: torch.func.hessian of the masked eval-mode loss on the flattened analysed params."""
    names = analysed_names(model, mask, scope)
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    fixed = {n: p.detach() for n, p in params.items() if n not in names}
    fixed.update({n: b.detach() for n, b in model.named_buffers()})
    flat = torch.cat([params[n].detach().flatten() for n in names])

    def loss(vector):
        parts = torch.split(vector, sizes)
        full = dict(fixed)
        for name, part, shape in zip(names, parts, shapes, strict=True):
            w = part.reshape(shape)
            full[name] = w * mask[name] if name in mask else w
        model.eval()
        return F.cross_entropy(functional_call(model, full, (x,)), y)

    was = model.training
    hessian = torch.func.hessian(loss)(flat)
    model.train(was)
    keep = torch.cat(
        [
            (mask[n] if n in mask else torch.ones(shape, dtype=torch.bool)).flatten()
            for n, shape in zip(names, shapes, strict=True)
        ]
    )
    return hessian, keep


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("batch_size", [None, 24])
def test_hvp_matches_exact_hessian(mlp_case, mode, batch_size):
    model, mask, x, y = mlp_case
    hessian, _ = exact_hessian(model, mask, x, y)
    op = hessian_operator(model, mask, x, y, mode=mode, batch_size=batch_size)
    vectors = torch.randn(5, op.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(op.matvec(vectors), vectors @ hessian.T, atol=1e-10, rtol=0)


def test_hessian_is_zero_on_pruned_coordinates(mlp_case):
    model, mask, x, y = mlp_case
    hessian, keep = exact_hessian(model, mask, x, y)
    assert (~keep).any() and keep.any()
    assert torch.count_nonzero(hessian[~keep]) == 0  # rows
    assert torch.count_nonzero(hessian[:, ~keep]) == 0  # columns
    assert hessian[keep][:, keep].abs().max() > 1e-3  # and not trivially zero elsewhere
    # the operator's support is the unpruned coordinates; an HVP never has mass on a pruned coordinate,
    # and a vector living only on pruned ones maps to 0
    op = hessian_operator(model, mask, x, y)
    assert torch.equal(op.support.bool(), keep)
    v = torch.randn(4, op.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.count_nonzero(op.matvec(v)[:, ~keep]) == 0
    assert torch.count_nonzero(op.matvec(v * ~keep)) == 0


def test_hutchinson_trace_close_to_exact(mlp_case):
    model, mask, x, y = mlp_case
    hessian, _ = exact_hessian(model, mask, x, y)
    exact = float(torch.trace(hessian))
    mean, stderr = hessian_trace(
        model, mask, x, y, probes=2000, batch_probes=500, generator=torch.Generator().manual_seed(0)
    )
    assert abs(mean - exact) <= 0.05 * abs(exact)
    assert abs(mean - exact) <= 4 * stderr
    assert 0 < stderr < 0.05 * abs(exact)


def test_hutchinson_is_reproducible_and_chunking_invariant(mlp_case):
    model, mask, x, y = mlp_case
    a = hessian_trace(model, mask, x, y, probes=20, batch_probes=7, generator=torch.Generator().manual_seed(5))
    b = hessian_trace(
        model, mask, x, y, probes=20, batch_probes=20, batch_size=10, generator=torch.Generator().manual_seed(5)
    )
    assert a == pytest.approx(b, rel=1e-9)
    assert hessian_trace(model, mask, x, y, probes=20) == hessian_trace(model, mask, x, y, probes=20)
    assert math.isnan(hessian_trace(model, mask, x, y, probes=1)[1])


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_top_eigenvalue_matches_exact(mlp_case, method):
    model, mask, x, y = mlp_case
    hessian, keep = exact_hessian(model, mask, x, y)
    exact = float(torch.linalg.eigvalsh(hessian[keep][:, keep])[-1])
    iters = 2000 if method == "power" else 60
    value = top_eigenvalue(
        model, mask, x, y, iters=iters, tol=1e-10, method=method, generator=torch.Generator().manual_seed(1)
    )
    assert value == pytest.approx(exact, rel=1e-3)


def test_power_iteration_recovers_largest_when_dominant_is_negative():
    eigenvalues = torch.tensor([-5.0, 2.0, 1.0, 0.5, -1.0], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    matrix = q @ torch.diag(eigenvalues) @ q.T
    start = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def matvec(v):
        return v @ matrix.T

    assert largest_eigenvalue(matvec, start, 5000, 1e-12, "power") == pytest.approx(2.0, rel=1e-3)
    assert largest_eigenvalue(matvec, start, 50, 1e-12, "lanczos") == pytest.approx(2.0, rel=1e-6)


def test_conv_batchnorm_model_all_parameters(conv_case):
    model, mask, x, y = conv_case
    model.train()  # the analysis must switch to eval mode itself and restore this flag
    before = {n: b.clone() for n, b in model.named_buffers()}
    hessian, keep = exact_hessian(model, mask, x, y, scope="all")
    op = hessian_operator(model, mask, x, y, scope="all")
    assert op.dim == sum(p.numel() for p in model.parameters())
    assert torch.equal(op.support.bool(), keep)
    vectors = torch.randn(3, op.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(op.matvec(vectors), vectors @ hessian.T, atol=1e-10, rtol=0)
    assert torch.count_nonzero(hessian[~keep]) == 0 and torch.count_nonzero(hessian[:, ~keep]) == 0
    exact = float(torch.linalg.eigvalsh(hessian[keep][:, keep])[-1])
    value = top_eigenvalue(model, mask, x, y, scope="all", iters=200, tol=1e-10, method="lanczos")
    assert value == pytest.approx(exact, rel=1e-3)
    hessian_trace(model, mask, x, y, scope="all", probes=4, batch_probes=2)
    assert model.training and model.bn.training
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_scopes_select_parameters(conv_case):
    model, mask, _, _ = conv_case
    assert analysed_names(model, mask, "mask") == ["conv.weight", "fc.weight"]
    assert analysed_names(model, mask, "weights") == ["conv.weight", "fc.weight"]
    assert analysed_names(model, mask, "all") == [n for n, _ in model.named_parameters()]
    with pytest.raises(ValueError):
        analysed_names(model, {}, "mask")
    with pytest.raises(KeyError):
        analysed_names(model, {"nope.weight": torch.ones(1, dtype=torch.bool)}, "mask")


def test_estimate_cost():
    cost = estimate_cost(1000, probes=100, batch_probes=10, eig_iters=50, batch_size=300)
    assert cost.hvps == 100 + 2 * 50  # power iteration counted at its worst case, two runs
    assert cost.sweeps == (10 + 100) * 4
    assert cost.example_passes == 200 * 1000
    assert "Hessian-vector products" in str(cost)
    assert estimate_cost(10, eig_iters=30, method="lanczos").hvps == 30
