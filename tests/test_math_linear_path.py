"""Linear interpolation between two solutions (sparse vs re-dense).

Tolerances: endpoint losses equal the two models' own losses to 1e-6 relative and their accuracies
exactly (the interpolation formula reproduces both endpoints exactly; `sddlab.metrics.evaluate` takes
the cross-entropy of float32 logits and sums it per chunk in float64, and the path and the reference
chunk the data differently); the midpoint equals a model loaded with the averaged state dict to 1e-6.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sddlab.analyses.math.linear_path import DEFAULT_ALPHAS, interpolate, interpolate_state, recalibrate_batchnorm
from sddlab.figures.paths import interpolation_figure
from sddlab.metrics import evaluate


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.bn = nn.BatchNorm1d(10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def _model(seed: int) -> BNNet:
    torch.manual_seed(seed)
    model = BNNet().double()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.3, 0.3)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.bn.num_batches_tracked.fill_(seed + 1)
    return model


@pytest.fixture
def case():
    a, b = _model(0), _model(1)
    g = torch.Generator().manual_seed(2)
    sets = {
        "train": (torch.randn(40, 6, dtype=torch.float64, generator=g), torch.randint(0, 3, (40,), generator=g)),
        "test": (torch.randn(25, 6, dtype=torch.float64, generator=g), torch.randint(0, 3, (25,), generator=g)),
    }
    return a, b, sets


def test_default_alphas():
    assert len(DEFAULT_ALPHAS) == 101
    assert DEFAULT_ALPHAS[0] == 0.0 and DEFAULT_ALPHAS[-1] == 1.0 and DEFAULT_ALPHAS[37] == 0.37


def test_endpoints_equal_each_models_own_metrics(case):
    a, b, sets = case
    template = _model(7)
    table = interpolate(a.state_dict(), b.state_dict(), template, sets, alphas=[0.0, 0.5, 1.0], batch_size=16)
    assert list(table.columns) == ["alpha", "split", "loss", "acc"]
    assert len(table) == 3 * 2
    for alpha, model in ((0.0, a), (1.0, b)):
        for split, (x, y) in sets.items():
            row = table[(table["alpha"] == alpha) & (table["split"] == split)].iloc[0]
            own = evaluate(model, x, y)
            assert row["loss"] == pytest.approx(own.loss, rel=1e-6)
            assert row["acc"] == own.acc
    # the endpoints differ, so the check above is not vacuous
    assert evaluate(a, *sets["test"]).loss != pytest.approx(evaluate(b, *sets["test"]).loss)


def test_midpoint_interpolates_parameters_and_buffers(case):
    a, b, sets = case
    template = _model(7)
    table = interpolate(a.state_dict(), b.state_dict(), template, sets, alphas=[0.5])
    mid = _model(8)
    mid.load_state_dict(
        {
            k: (a.state_dict()[k] + b.state_dict()[k]) / 2
            if a.state_dict()[k].is_floating_point()
            else b.state_dict()[k]
            for k in a.state_dict()
        }
    )
    for split, (x, y) in sets.items():
        row = table[table["split"] == split].iloc[0]
        reference = evaluate(mid, x, y)
        assert row["loss"] == pytest.approx(reference.loss, rel=1e-6) and row["acc"] == reference.acc
    state = interpolate_state(a.state_dict(), b.state_dict(), 0.25)
    torch.testing.assert_close(state["bn.running_var"], 0.75 * a.bn.running_var + 0.25 * b.bn.running_var)
    assert int(state["bn.num_batches_tracked"]) == 1  # integer buffer from the nearer endpoint (a)
    # the template was only a template
    assert torch.equal(template.state_dict()["fc1.weight"], _model(7).state_dict()["fc1.weight"])


def test_bn_recalibration(case):
    a, b, sets = case
    x = sets["train"][0]
    template = _model(7)
    table = interpolate(
        a.state_dict(), b.state_dict(), template, {"train": sets["train"]}, alphas=[0.0, 0.5], bn_recalibrate=x
    )
    assert len(table) == 2 and table["loss"].notna().all()
    assert torch.equal(template.bn.running_mean, _model(7).bn.running_mean)  # recalibration used a copy
    recalibrated = _model(0)
    recalibrate_batchnorm(recalibrated, x, batch_size=None)
    with torch.no_grad():
        features = recalibrated.fc1(x)
    torch.testing.assert_close(recalibrated.bn.running_mean, features.mean(0))
    torch.testing.assert_close(recalibrated.bn.running_var, features.var(0, unbiased=True))
    assert not recalibrated.training
    row = table[table["alpha"] == 0.0].iloc[0]
    assert row["loss"] == pytest.approx(evaluate(recalibrated, *sets["train"]).loss, rel=1e-6)


def test_interpolate_rejects_mismatched_states(case):
    a, b, sets = case
    broken = dict(b.state_dict())
    broken.pop("fc2.bias")
    with pytest.raises(KeyError):
        interpolate(a.state_dict(), broken, _model(7), sets, alphas=[0.0])


def test_interpolation_figure(case):
    a, b, sets = case
    table = interpolate(a.state_dict(), b.state_dict(), _model(7), sets, alphas=[1.0, 0.0, 0.5])
    figure = interpolation_figure(table)
    assert [trace.name for trace in figure.data] == ["train loss", "train accuracy", "test loss", "test accuracy"]
    for trace in figure.data:  # each line is its split's column, sorted by alpha
        split, metric = trace.name.split()
        part = table[table["split"] == split].sort_values("alpha")
        assert list(trace.x) == [0.0, 0.5, 1.0]
        assert list(trace.y) == part["loss" if metric == "loss" else "acc"].tolist()
