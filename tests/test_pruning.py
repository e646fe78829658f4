"""Pruning: exact counts per level, nested masks, lowest scores removed, what is (never) prunable."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sddlab import pruning
from sddlab.config import Config, ModelConfig
from sddlab.errors import ConfigError
from sddlab.figures.axis import paper_axis
from sddlab.models import build_model, prunable_names
from sddlab.models.build import resolve_ignored
from sddlab.preparation import prepare

LEVELS = 8


def mlp(hidden=(32, 16), seed=0):
    return build_model(ModelConfig(name="mlp", hidden=hidden), (64,), 10, seed)


def count_to_prune(alive: int, fraction: float = 0.2) -> int:
    return math.ceil(Fraction(str(fraction)) * alive)


@torch.no_grad()
def make_large(weight: torch.Tensor) -> None:
    """Every |w| of this layer above 10, larger than any other weight of the net."""
    weight.copy_(torch.where(weight < 0, -1.0, 1.0) * (weight.abs() + 10))


def next_scores(model, mask, score: str, level: int):
    if score == "magnitude":
        return pruning.magnitude_scores(model, mask)
    if score == "random":
        return pruning.random_scores(mask, torch.Generator().manual_seed(level))
    generator = torch.Generator().manual_seed(100 + level)
    x, y = torch.randn(32, 64, generator=generator), torch.randint(0, 10, (32,), generator=generator)
    return pruning.gradient_scores(model, mask, lambda m: F.cross_entropy(m(x), y))


def imp(model, score: str, scope: str, levels: int = LEVELS):
    """Masks of `levels` rounds; between rounds the weights move (a stand-in for training)."""
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    masks = [mask]
    generator = torch.Generator().manual_seed(0)
    for level in range(1, levels + 1):
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.1 * torch.randn(param.shape, generator=generator))
        pruning.apply_mask(model, mask)
        mask = pruning.prune_mask(next_scores(model, mask, score, level), mask, 0.2, scope)
        masks.append(mask)
    return masks


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("score", ["magnitude", "gradient", "random"])
def test_sparsity_after_each_level_and_nesting(score, scope):
    masks = imp(mlp(), score, scope)
    total = pruning.total(masks[0])
    assert total == 64 * 32 + 32 * 16 + 16 * 10
    for level in range(1, LEVELS + 1):
        previous, mask = masks[level - 1], masks[level]
        assert mask.keys() == previous.keys()
        for name in mask:
            assert mask[name].dtype == torch.bool and mask[name].shape == previous[name].shape
            assert not (mask[name] & ~previous[name]).any(), "a pruned weight came back"
        if scope == "global":
            assert pruning.remaining(previous) - pruning.remaining(mask) == count_to_prune(pruning.remaining(previous))
        else:
            for name in mask:
                alive = int(previous[name].sum())
                assert alive - int(mask[name].sum()) == count_to_prune(alive)
        # rounding up each level removes at most one extra weight per level (per layer when layerwise)
        layers = 1 if scope == "global" else len(mask)
        assert abs(pruning.remaining(mask) - 0.8**level * total) <= level * layers
        assert pruning.sparsity(mask) == pytest.approx(1 - 0.8**level, abs=level * layers / total)


def test_magnitude_global_removes_exactly_the_lowest_weights():
    model = mlp(hidden=(40, 30))
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    for _ in range(5):
        pruning.apply_mask(model, mask)
        scores = pruning.magnitude_scores(model, mask)
        new = pruning.prune_mask(scores, mask, 0.2, "global")
        removed = torch.cat([scores[n][mask[n] & ~new[n]] for n in mask])
        kept = torch.cat([scores[n][new[n]] for n in mask])
        assert len(removed) == count_to_prune(pruning.remaining(mask))
        assert removed.max() < kept.min()
        # the removed weights span several layers: one threshold for the whole network
        assert sum(bool((mask[n] & ~new[n]).any()) for n in mask) >= 2
        mask = new


def test_magnitude_layerwise_prunes_each_layer_by_the_fraction():
    model = mlp(hidden=(40, 30))
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    make_large(model.hidden[0].weight)  # a global threshold would spare this layer entirely
    for _ in range(4):
        scores = pruning.magnitude_scores(model, mask)
        new = pruning.prune_mask(scores, mask, 0.2, "layerwise")
        for name in mask:
            alive = int(mask[name].sum())
            removed, kept = scores[name][mask[name] & ~new[name]], scores[name][new[name]]
            assert len(removed) == count_to_prune(alive)
            assert removed.max() < kept.min()
        mask = new
        pruning.apply_mask(model, mask)


def test_global_threshold_spares_the_large_layer():
    model = mlp(hidden=(40, 30))
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    make_large(model.hidden[0].weight)
    new = pruning.prune_mask(pruning.magnitude_scores(model, mask), mask, 0.2, "global")
    assert new["hidden.0.weight"].all()


def test_random_scores_follow_their_generator():
    model = mlp()
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    first = pruning.prune_mask(pruning.random_scores(mask, torch.Generator().manual_seed(1)), mask, 0.2, "global")
    again = pruning.prune_mask(pruning.random_scores(mask, torch.Generator().manual_seed(1)), mask, 0.2, "global")
    other = pruning.prune_mask(pruning.random_scores(mask, torch.Generator().manual_seed(2)), mask, 0.2, "global")
    assert all(torch.equal(first[n], again[n]) for n in mask)
    assert any(not torch.equal(first[n], other[n]) for n in mask)


def test_gradient_scores_are_weight_times_gradient():
    model = mlp()
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    x, y = torch.randn(16, 64, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 10
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), [params[n] for n in mask])
    expected = {n: (params[n].detach() * g).abs() for n, g in zip(mask, grads, strict=True)}
    scores = pruning.gradient_scores(model, mask, lambda m: F.cross_entropy(m(x), y))
    for name in mask:
        torch.testing.assert_close(scores[name], expected[name])
    assert all(p.grad is None for p in model.parameters())


def test_apply_mask_zeroes_exactly_the_pruned_weights():
    model = mlp()
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = pruning.prune_mask(pruning.magnitude_scores(model, mask), mask, 0.5, "global")
    pruning.apply_mask(model, mask)
    for name, param in model.named_parameters():
        if name in mask:
            assert (param[~mask[name]] == 0).all()
            assert torch.equal(param[mask[name]], before[name][mask[name]])
        else:
            assert torch.equal(param, before[name])
    assert pruning.sparsity(pruning.dense_mask(model, list(mask))) == 0.0


def test_biases_are_never_prunable_for_the_mlp(data_dir, small_config):
    prepared = prepare(small_config(), data_dir)
    assert prepared.prunable == ["hidden.0.weight", "hidden.1.weight", "out.weight"]
    assert prepared.ignored_weights == 0
    mask = pruning.dense_mask(prepared.model, prepared.prunable)
    assert all(name.endswith(".weight") for name in mask)
    assert not any(name.endswith(".bias") for name in mask)


def test_lenet_output_layer_is_ignored_by_default(data_dir, small_config):
    config = ModelConfig(name="lenet-300-100")
    model = build_model(config, (64,), 10, 0)
    assert resolve_ignored(config, model) == ("fc3",)
    prepared = prepare(small_config({"model.name": "lenet-300-100"}), data_dir)
    assert prepared.prunable == ["fc1.weight", "fc2.weight"]
    assert prepared.ignored_weights == 100 * 10
    everything = prepare(small_config({"model.name": "lenet-300-100", "model.ignored": []}), data_dir)
    assert everything.prunable == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert everything.ignored_weights == 0


def test_prunable_count_records_the_ignored_layer_in_the_paper_sparsity(tmp_path, small_config, run_config):
    """The `prunable` count (the default): 20 % of the prunable weights go, the paper's axis relabels them."""
    import sddlab

    config = small_config({"model.name": "lenet-300-100", "experiment.levels": 2, "training.duration": "1ep"})
    table = sddlab.load(run_config(config, tmp_path))
    prunable = 64 * 300 + 300 * 100
    assert (table["remaining_paper"] == table["remaining"] + 1000).all()
    assert table["remaining"].iloc[0] == prunable
    assert table["sparsity"].iloc[2] == pytest.approx(1 - table["remaining"].iloc[2] / prunable)
    assert table["remaining"].tolist() == pruning.planned_remaining(prunable, 0.2, 2)  # ceil(0.2 x prunable left)
    assert paper_axis(table) is table  # figures keep the prunable axis
    assert table["sparsity_paper"].iloc[2] == pytest.approx(1 - (table["remaining"].iloc[2] + 1000) / (prunable + 1000))


def test_explicit_ignored_layers(data_dir, small_config):
    prepared = prepare(small_config({"model.ignored": ["out"]}), data_dir)
    assert prepared.prunable == ["hidden.0.weight", "hidden.1.weight"]
    assert prepared.ignored_weights == 16 * 10
    with pytest.raises(ConfigError) as info:
        prepare(small_config({"model.ignored": ["hidden.0", "hidden.1", "out"]}), data_dir)
    assert info.value.field == "model.ignored"


# -- the official count (the paper's code, OpenLTH's sparse_global) ----------------------------------------
LENET_PRUNABLE, LENET_IGNORED = 784 * 300 + 300 * 100, 100 * 10


def official_step(weights: np.ndarray, keep: np.ndarray, ignored: int, fraction: float = 0.2) -> np.ndarray:
    """One level of the paper's code, written from its source: the never-pruned layers' weights are in
    the mask it counts, k = ceil(fraction * everything left), and it keeps |w| > sorted(|w| left)[k]."""
    k = math.ceil(Fraction(str(fraction)) * (int(keep.sum()) + ignored))
    threshold = np.sort(np.abs(weights[keep]))[k]
    return keep & (np.abs(weights) > threshold)


def official_remaining(levels: int, prunable: int = LENET_PRUNABLE, ignored: int = LENET_IGNORED) -> list[int]:
    """Hidden weights left after each level under that rule (k + 1 removed: sorted[k] itself goes too)."""
    left = [prunable]
    for _ in range(levels):
        left.append(left[-1] - (math.ceil(Fraction(1, 5) * (left[-1] + ignored)) + 1))
    return left


def test_the_official_rule_reaches_the_papers_lenet_endpoint():
    left = official_remaining(25)
    assert (left[20], left[24]) == (2062, 250)  # Figure 1's left panel ends at L = 24 (99.53 %)
    assert left[25] <= 0  # one more level would leave nothing: why the figure stops there
    assert 1 - (left[24] + LENET_IGNORED) / (LENET_PRUNABLE + LENET_IGNORED) == pytest.approx(0.9953, abs=5e-5)
    assert pruning.planned_remaining(LENET_PRUNABLE, 0.2, 24, LENET_IGNORED, "official") == left[:25]
    # today's prunable count ends far short of the paper's endpoint
    assert pruning.planned_remaining(LENET_PRUNABLE, 0.2, 24)[24] == 1251


def test_official_count_masks_equal_the_papers_threshold_rule():
    generator = np.random.default_rng(0)
    shapes = {"fc1.weight": (300, 784), "fc2.weight": (100, 300)}
    keep = {name: np.ones(shape, dtype=bool) for name, shape in shapes.items()}
    mask = {name: torch.ones(shape, dtype=torch.bool) for name, shape in shapes.items()}
    expected = official_remaining(24)
    for level in range(1, 25):
        weights = {name: generator.standard_normal(shape) for name, shape in shapes.items()}
        flat_w = np.concatenate([weights[n].ravel() for n in shapes])
        flat_keep = official_step(flat_w, np.concatenate([keep[n].ravel() for n in shapes]), LENET_IGNORED)
        offset = 0
        for name, shape in shapes.items():
            keep[name] = flat_keep[offset : offset + math.prod(shape)].reshape(shape)
            offset += math.prod(shape)
        scores = {name: torch.from_numpy(np.abs(weights[name])) for name in shapes}
        mask = pruning.prune_mask(scores, mask, 0.2, "global", LENET_IGNORED, "official")
        for name in shapes:
            assert np.array_equal(mask[name].numpy(), keep[name]), f"level {level}, {name}"
        assert pruning.remaining(mask) == expected[level]


def test_fig1_lenet_mnist_stops_at_the_papers_endpoint(tmp_path, monkeypatch):
    """The paper preset, on MNIST-format files, 1 epoch a level: the official counts at every level."""
    import sddlab

    monkeypatch.setenv("SDDLAB_NO_DOWNLOAD", "1")
    write_tiny_mnist(tmp_path / "data" / "mnist" / "MNIST" / "raw")
    config = sddlab.get_preset("fig1-lenet-mnist").with_overrides({"training.duration": "1ep"})
    assert config.experiment.levels == 24 and config.pruning.count == "official"
    table = sddlab.load(sddlab.run(config, tmp_path / "results", data_dir=tmp_path / "data", progress=False,
                                   device="cpu"))
    assert table["remaining"].tolist() == official_remaining(24)
    assert table["remaining"].iloc[20] == 2062 and table["remaining"].iloc[24] == 250
    assert table["sparsity_paper"].iloc[24] == pytest.approx(1 - 1250 / 266200)
    drawn = paper_axis(table)  # figures and phases of official-count runs use the paper's axis
    assert drawn["sparsity"].tolist() == table["sparsity_paper"].tolist()
    assert drawn["remaining"].iloc[24] == 1250
    with pytest.raises(ConfigError) as info:  # level 25 would leave no weight
        prepare(config.with_overrides({"experiment.levels": 25}), tmp_path / "data")
    assert info.value.field == "experiment.levels" and "at most 24" in str(info.value)


def write_tiny_mnist(raw, n_train: int = 64, n_test: int = 32) -> None:
    """MNIST's four IDX files (magic 2051 images, 2049 labels, big-endian sizes), unzipped, random pixels."""
    generator = np.random.default_rng(0)
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = generator.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def test_official_count_needs_the_global_scope():
    with pytest.raises(ConfigError) as info:
        Config(pruning={"count": "official", "scope": "layerwise"})
    assert info.value.field == "pruning.count"




def test_official_count_for_vgg16_on_cifar100():
    """VGG-16 (OpenLTH) never prunes its 512 x 100 output layer: at L = 25 the paper keeps 4,561 conv weights."""
    config = ModelConfig(name="vgg16")
    model = build_model(config, (3, 32, 32), 100, 0)
    params = dict(model.named_parameters())
    ignored = sum(params[f"{layer}.weight"].numel() for layer in resolve_ignored(config, model))
    prunable = sum(params[name].numel() for name in prunable_names(model, resolve_ignored(config, model)))
    assert ignored == 512 * 100
    left = official_remaining(25, prunable, ignored)
    assert left[25] == 4561
    assert pruning.planned_remaining(prunable, 0.2, 25, ignored, "official") == left
    assert pruning.planned_remaining(prunable, 0.2, 25)[25] == 55572  # the prunable count
