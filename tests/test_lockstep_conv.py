"""Conv nets in lockstep: K seeds of a narrow ResNet-18 (BatchNorm, on-device augmentation) trained as one
stacked model through the lockstep loop equal K separate runs of the ordinary loop, in float64 on the CPU:
weights, BatchNorm running statistics and every epoch's train loss and accuracy."""

from __future__ import annotations

import copy

import pytest
import torch
from test_vision_data import write_cifar10

import sddlab
import sddlab.data.device
from sddlab.config import ModelConfig
from sddlab.lockstep.loop import train_stacked
from sddlab.lockstep.stacked import StackedMLP, stack_models, supports_lockstep
from sddlab.lockstep.stacked_conv import StackedConv, stack_conv_nets
from sddlab.models import build_model
from sddlab.preparation import level_span, prepare
from sddlab.training import make_optimizer, train

SEEDS = [0, 5]


@pytest.fixture
def float64_cifar(tmp_path, monkeypatch, float64):
    """CIFAR-10 files in the real format (30 training images), loaded as float64; models built in float64."""
    monkeypatch.setenv("SDDLAB_NO_DOWNLOAD", "1")
    write_cifar10(tmp_path / "data", n=6)
    return tmp_path / "data"


def _random_mask(setup, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    params = dict(setup.model.named_parameters())
    return {name: torch.rand(params[name].shape, generator=generator) > 0.3 for name in setup.prunable}


def test_stacked_resnet_equals_separate_runs_in_float64(float64_cifar):
    config = sddlab.get_preset("fig1-cifar10").with_overrides({  # SGD, momentum, weight decay, multistep LR
        "model.width": 0.03125, "training.batch_size": 10, "training.duration": "2ep", "training.lr": 0.05,
        "training.milestones": ["1ep"], "retraining.rewind_point": "0it", "experiment.levels": 1})
    setups = [prepare(config.with_overrides({"experiment.seed": s}), float64_cifar) for s in SEEDS]
    assert setups[0].runtime.channels_last and setups[0].data.x_train.dtype == torch.float64
    spans = [level_span(setup, 1) for setup in setups]
    masks = [_random_mask(setup, seed) for setup, seed in zip(setups, SEEDS, strict=True)]
    stacked = StackedConv([copy.deepcopy(setup.model) for setup in setups])

    separate, separate_stats = [], []
    for setup, span, mask in zip(setups, spans, masks, strict=True):
        model, stats = copy.deepcopy(setup.model), []
        train(model, mask, setup.data, span, make_optimizer(model, span.training), setup.runtime, stats.append,
              track=True)
        separate.append(model)
        separate_stats.append(stats)

    stacked_stats = []
    keeps = {name: torch.stack([mask[name] for mask in masks]).double() for name in masks[0]}
    train_stacked(stacked, keeps, [s.data for s in setups], spans, make_optimizer(stacked, spans[0].training),
                  setups[0].runtime, stacked_stats.append, track=True)

    for k, (setup, model) in enumerate(zip(setups, separate, strict=True)):
        mine = copy.deepcopy(setup.model)
        stacked.copy_into(k, mine)
        theirs = model.state_dict()
        for name, value in mine.state_dict().items():
            if value.is_floating_point():
                assert torch.allclose(value, theirs[name], atol=1e-9, rtol=1e-9), name
            else:  # BatchNorm's batch counts
                assert torch.equal(value, theirs[name]), name
        assert [s.train_loss for s in separate_stats[k]] == pytest.approx(  # the loop tallies in float32
            [s[k].train_loss for s in stacked_stats], abs=1e-6)
        assert [s.train_acc for s in separate_stats[k]] == [s[k].train_acc for s in stacked_stats]
        pruned = ~masks[k]["layer1.0.conv1.weight"]
        assert torch.all(mine.state_dict()["layer1.0.conv1.weight"][pruned] == 0)
    # the seeds really differ (own init, noise, order and augmentation), and training moved each one's statistics
    assert not torch.allclose(stacked.stack[0][0], stacked.stack[0][1])
    means = stacked._stacked_buffers()["bn1.running_mean"]
    assert torch.all(means.abs().sum(1) > 0) and not torch.allclose(means[0], means[1])


def test_conv_nets_stack_on_cuda_only_and_mlps_everywhere():
    assert stack_conv_nets("cuda") and stack_conv_nets("cuda:1") and not stack_conv_nets("cpu")
    conv, mlp = sddlab.get_preset("fig1-cifar10"), sddlab.get_preset("digits")
    assert [supports_lockstep(conv, d) for d in ("cpu", "cuda")] == [False, True]
    assert [supports_lockstep(mlp, d) for d in ("cpu", "cuda")] == [True, True]
    assert not supports_lockstep(conv.with_overrides({"training.early_stop": "entropy"}), "cuda")
    resnets = [build_model(ModelConfig(name="resnet18", width=0.0625), (3, 32, 32), 10, seed) for seed in (0, 1)]
    mlps = [build_model(ModelConfig(name="mlp", hidden=(8,)), (1, 8, 8), 10, seed) for seed in (0, 1)]
    assert type(stack_models(resnets)) is StackedConv and type(stack_models(mlps)) is StackedMLP
