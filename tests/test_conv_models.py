"""Conv nets of the paper: exact prunable-weight counts, structure, and one training step of every model."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from sddlab.config import ModelConfig
from sddlab.errors import ConfigError
from sddlab.models import MODELS, build_model, prunable_names


def prunable_count(name: str, num_classes: int, input_shape=(3, 32, 32)) -> int:
    model = build_model(ModelConfig(name=name), input_shape, num_classes, seed=0)
    parameters = dict(model.named_parameters())
    return sum(parameters[key].numel() for key in prunable_names(model, MODELS[name].default_ignored))


@pytest.mark.parametrize(
    ("name", "num_classes", "expected"),
    [
        ("resnet18", 10, 11_164_352),
        ("resnet18", 100, 11_210_432),
        ("vgg16", 10, 14_710_464),
        ("vgg16", 100, 14_710_464),
    ],
)
def test_prunable_weight_counts(name, num_classes, expected):
    assert prunable_count(name, num_classes) == expected


def test_resnet18_prunes_every_conv_shortcut_and_fc():
    model = build_model(ModelConfig(name="resnet18"), (3, 32, 32), 10, seed=0)
    names = prunable_names(model, MODELS["resnet18"].default_ignored)
    assert MODELS["resnet18"].default_ignored == ()
    assert "conv1.weight" in names and "fc.weight" in names
    assert [n for n in names if "shortcut" in n] == [f"layer{k}.0.shortcut.0.weight" for k in (2, 3, 4)]
    assert len(names) == 1 + 16 + 3 + 1
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))


def _swap_stem_count(reference: nn.Module) -> int:
    """torchvision's ImageNet ResNet parameter count with its 7×7 stem replaced by a 3×3 one."""
    total = sum(p.numel() for p in reference.parameters())
    return total - reference.conv1.weight.numel() + 3 * 64 * 3 * 3


@pytest.mark.parametrize(
    ("name", "reference", "num_classes"), [("resnet18", "resnet18", 10), ("resnet101", "resnet101", 200)]
)
def test_resnets_match_torchvision_apart_from_the_stem(name, reference, num_classes):
    model = build_model(ModelConfig(name=name), (3, 32, 32), num_classes, seed=0)
    expected = _swap_stem_count(getattr(torchvision.models, reference)(num_classes=num_classes))
    assert sum(p.numel() for p in model.parameters()) == expected


def test_resnet101_structure():
    model = build_model(ModelConfig(name="resnet101"), (3, 32, 32), 200, seed=0)
    assert [len(getattr(model, f"layer{k}")) for k in (1, 2, 3, 4)] == [3, 4, 23, 3]
    assert model.fc.in_features == 2048
    names = prunable_names(model, MODELS["resnet101"].default_ignored)
    assert len(names) == 1 + 33 * 3 + 4 + 1  # stem, bottleneck convs, shortcuts, fc
    assert prunable_count("resnet101", 200) == 42_796_736


def test_vgg16_structure():
    model = build_model(ModelConfig(name="vgg16"), (3, 32, 32), 10, seed=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.bias is not None for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4
    assert MODELS["vgg16"].default_ignored == ("fc",)
    assert "fc.weight" not in prunable_names(model, ("fc",))
    assert model.fc.in_features == 512


def test_width_multiplier_scales_channels():
    model = build_model(ModelConfig(name="resnet18", width=0.5), (3, 32, 32), 10, seed=0)
    assert model.conv1.out_channels == 32 and model.fc.in_features == 256
    vgg = build_model(ModelConfig(name="vgg16", width=0.25), (3, 32, 32), 10, seed=0)
    assert vgg.fc.in_features == 128


def test_same_seed_same_weights():
    a = build_model(ModelConfig(name="resnet18"), (3, 32, 32), 10, seed=3).state_dict()
    b = build_model(ModelConfig(name="resnet18"), (3, 32, 32), 10, seed=3).state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_single_channel_28px_input(name):
    model = build_model(ModelConfig(name=name, width=0.125), (1, 28, 28), 10, seed=0).eval()
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.parametrize("name", ["resnet18", "resnet101", "vgg16"])
def test_flat_input_is_a_config_error(name):
    with pytest.raises(ConfigError, match="C×H×W"):
        build_model(ModelConfig(name=name), (64,), 10, seed=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_training_step(name):
    size = 16 if name == "resnet101" else 32  # ResNet-101 at 16 px: same graph, a quarter of the CPU time
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name), (3, size, size), 10, seed=0).train()
    before = {key: value.detach().clone() for key, value in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, y = torch.randn(2, 3, size, size), torch.tensor([1, 7])
    logits = model(x)
    assert logits.shape == (2, 10)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    changed = [key for key, value in model.named_parameters() if not torch.equal(value, before[key])]
    assert len(changed) == len(before)


def test_models_built_in_parallel_threads_match_a_serial_build():
    """Default layer init draws from torch's global generator; concurrent builds must not interleave it."""
    import threading

    config = ModelConfig(name="mlp", hidden=(64, 64))
    serial = {seed: build_model(config, (64,), 10, seed=seed).state_dict() for seed in range(6)}
    built: dict[int, dict] = {}

    def build(seed: int) -> None:
        for _ in range(5):
            built[seed] = build_model(config, (64,), 10, seed=seed).state_dict()

    threads = [threading.Thread(target=build, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed, state in serial.items():
        assert all(torch.equal(state[key], built[seed][key]) for key in state), f"seed {seed} differs"
