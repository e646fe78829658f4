"""Pruning: exact counts per level, nested masks, lowest scores removed, what is (never) prunable."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from sddlab import pruning
from sddlab.config import ModelConfig
from sddlab.errors import ConfigError
from sddlab.experiment import prepare
from sddlab.models import build_model, prunable_names
from sddlab.models.build import resolve_ignored

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


def test_lenet_records_count_the_ignored_layer_in_the_paper_sparsity(tmp_path, small_config, run_config):
    import sddlab

    config = small_config({"model.name": "lenet-300-100", "experiment.levels": 2, "training.duration": "1ep"})
    table = sddlab.load(run_config(config, tmp_path))
    prunable = 64 * 300 + 300 * 100
    assert (table["remaining_paper"] == table["remaining"] + 1000).all()
    assert table["remaining"].iloc[0] == prunable
    assert table["sparsity"].iloc[2] == pytest.approx(1 - table["remaining"].iloc[2] / prunable)
    assert table["sparsity_paper"].iloc[2] == pytest.approx(1 - (table["remaining"].iloc[2] + 1000) / (prunable + 1000))


def test_explicit_ignored_layers(data_dir, small_config):
    prepared = prepare(small_config({"model.ignored": ["out"]}), data_dir)
    assert prepared.prunable == ["hidden.0.weight", "hidden.1.weight"]
    assert prepared.ignored_weights == 16 * 10
    with pytest.raises(ConfigError) as info:
        prepare(small_config({"model.ignored": ["hidden.0", "hidden.1", "out"]}), data_dir)
    assert info.value.field == "model.ignored"
