"""Filter-normalised directions (Li et al. 2018) on the sparse network, and 1-D loss curves.

Tolerances: per-filter norms equal the masked weight filter norms to 1e-10 relative (float64);
the alpha = 0 point of a loss curve equals the model's own loss to 1e-6 relative (`sddlab.metrics.evaluate`
takes the cross-entropy of float32 logits and sums it per chunk in float64; the curve and the reference
chunk the data differently) and its accuracy exactly.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from sddlab.analyses.math.directions import filter_normalised_direction, loss_curve_1d, perturbed_params
from sddlab.figures.paths import loss_curve_figure
from sddlab.metrics import evaluate


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.hidden = nn.Linear(4 * 5 * 5, 6)
        self.out = nn.Linear(6, 3)  # never pruned: not in the mask

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).flatten(1)
        return self.out(torch.relu(self.hidden(h)))


@pytest.fixture
def case():
    torch.manual_seed(0)
    model = SmallNet().double()
    mask = {"conv.weight": torch.rand(4, 2, 3, 3) > 0.5, "hidden.weight": torch.rand(6, 100) > 0.7}
    mask["conv.weight"][1] = False  # a filter pruned entirely
    with torch.no_grad():
        for name, m in mask.items():
            model.get_parameter(name).mul_(m)
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(30, 2, 5, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (30,))
    return model, mask, x, y


def test_direction_is_masked_and_filter_normalised(case):
    model, mask, _, _ = case
    direction = filter_normalised_direction(model, mask, generator=torch.Generator().manual_seed(1))
    params = dict(model.named_parameters())
    assert set(direction) == set(params)
    for name, p in params.items():
        d = direction[name]
        assert d.shape == p.shape and d.dtype == p.dtype
        if p.ndim < 2:  # biases and BatchNorm weight/bias
            assert torch.count_nonzero(d) == 0, name
            continue
        w = p.detach() * mask[name] if name in mask else p.detach()
        if name in mask:
            assert torch.count_nonzero(d[~mask[name]]) == 0, name
        torch.testing.assert_close(d.flatten(1).norm(dim=1), w.flatten(1).norm(dim=1), rtol=1e-10, atol=1e-12)
        assert torch.count_nonzero(d) > 0
    assert torch.count_nonzero(direction["conv.weight"][1]) == 0  # filter with no weights left


def test_direction_is_reproducible_and_restrictable(case):
    model, mask, _, _ = case
    a = filter_normalised_direction(model, mask, generator=torch.Generator().manual_seed(4))
    b = filter_normalised_direction(model, mask, generator=torch.Generator().manual_seed(4))
    c = filter_normalised_direction(model, mask, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["hidden.weight"], c["hidden.weight"])
    only = filter_normalised_direction(model, mask, names=["hidden.weight"])
    assert torch.count_nonzero(only["conv.weight"]) == 0 and torch.count_nonzero(only["out.weight"]) == 0
    assert torch.count_nonzero(only["hidden.weight"]) > 0


def test_loss_curve_1d(case):
    model, mask, x, y = case
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    direction = filter_normalised_direction(model, mask)
    curve = loss_curve_1d(model, mask, direction, x, y, alphas=[-1.0, -0.5, 0.0, 0.5, 1.0], batch_size=7)
    assert isinstance(curve, pd.DataFrame)
    assert list(curve.columns) == ["alpha", "loss", "acc"]
    assert curve["alpha"].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    own = evaluate(model, x, y)
    at_zero = curve.loc[curve["alpha"] == 0.0].iloc[0]
    assert at_zero["loss"] == pytest.approx(own.loss, rel=1e-6)
    assert at_zero["acc"] == own.acc
    assert curve["loss"].iloc[0] != pytest.approx(own.loss)  # the direction does move the loss
    # a point of the curve is the sparse network moved to (w + alpha d) * m, loaded into a copy by hand
    moved = SmallNet().double()
    moved.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.copy_((p - 0.5 * direction[name]) * mask.get(name, torch.ones_like(p, dtype=torch.bool)))
    point, reference = curve[curve["alpha"] == -0.5].iloc[0], evaluate(moved, x, y)
    assert point["loss"] == pytest.approx(reference.loss, rel=1e-6) and point["acc"] == reference.acc
    # the perturbed sparse network keeps its pruned weights at zero, and nothing was modified
    for name, w in perturbed_params(model, mask, direction, 0.7).items():
        if name in mask:
            assert torch.count_nonzero(w[~mask[name]]) == 0
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_loss_curve_figure(case):
    model, mask, x, y = case
    directions = [filter_normalised_direction(model, mask, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    curves = {label: loss_curve_1d(model, mask, d, x, y, alphas=[0.5, -0.5, 0])
              for label, d in zip(("dense", "sweet"), directions, strict=True)}
    figure = loss_curve_figure(curves)
    assert [trace.name for trace in figure.data] == ["dense", "dense", "sweet", "sweet"]
    for (label, curve), loss, acc in zip(curves.items(), figure.data[::2], figure.data[1::2], strict=True):
        ordered = curve.sort_values("alpha")
        assert list(loss.x) == list(acc.x) == [-0.5, 0.0, 0.5]
        assert list(loss.y) == ordered["loss"].tolist() and list(acc.y) == ordered["acc"].tolist(), label
    single = loss_curve_figure(curves["dense"])
    assert [list(trace.y) for trace in single.data] == [list(trace.y) for trace in figure.data[:2]]
