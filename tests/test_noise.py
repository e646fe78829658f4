"""Label noise: exact counts, the four noise models, clean test labels, independent random streams."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from sddlab.config import DataConfig, NoiseConfig
from sddlab.data import corrupt_labels
from sddlab.data.device import prepare_data
from sddlab.data.tabular import MNIST_ASYMMETRIC, load_digits_data
from sddlab.errors import ConfigError
from sddlab.preparation import prepare

C = 10


def exact_count(rate: float, n: int) -> int:
    """⌈rate·n⌉ in exact decimal arithmetic (0.2 * 1000 is 200.00000000000003 in floats)."""
    return math.ceil(Fraction(str(rate)) * n)


def balanced_labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % C)


@pytest.mark.parametrize("kind", ["random", "symmetric", "pairflip"])
@pytest.mark.parametrize(("rate", "n"), [(0.2, 1000), (0.4, 1203), (0.8, 1000), (0.1, 1000), (0.3, 1000), (0.7, 10)])
def test_exactly_ceil_rate_n_selected(kind, rate, n):
    clean = balanced_labels(n)
    noisy = corrupt_labels(clean, C, kind, rate, np.random.default_rng(1))
    assert int(noisy.selected.sum()) == exact_count(rate, n)
    np.testing.assert_array_equal(noisy.clean, clean)
    np.testing.assert_array_equal(noisy.labels[~noisy.selected], clean[~noisy.selected])
    assert noisy.labels.min() >= 0 and noisy.labels.max() < C
    assert noisy.nominal_rate == rate


def test_symmetric_always_changes_the_label_and_uses_every_other_class():
    clean = balanced_labels(5000)
    noisy = corrupt_labels(clean, C, "symmetric", 0.4, np.random.default_rng(2))
    chosen = noisy.selected
    assert (noisy.labels[chosen] != clean[chosen]).all()
    np.testing.assert_array_equal(noisy.noisy, chosen)
    assert noisy.effective_rate == pytest.approx(exact_count(0.4, 5000) / 5000)
    offsets = set(((noisy.labels[chosen] - clean[chosen]) % C).tolist())
    assert offsets == set(range(1, C))


def test_pairflip_maps_i_to_i_plus_one():
    clean = balanced_labels(1000)
    noisy = corrupt_labels(clean, C, "pairflip", 0.3, np.random.default_rng(3))
    chosen = noisy.selected
    np.testing.assert_array_equal(noisy.labels[chosen], (clean[chosen] + 1) % C)
    assert (clean[chosen] == C - 1).any()  # the wrap-around case was exercised: 9 -> 0
    np.testing.assert_array_equal(noisy.noisy, chosen)


def test_asymmetric_maps_only_mapped_classes_with_exact_counts_per_class():
    clean = np.random.default_rng(4).integers(0, C, size=1237)
    rate = 0.3
    noisy = corrupt_labels(clean, C, "asymmetric", rate, np.random.default_rng(5), MNIST_ASYMMETRIC)
    for source in range(C):
        members = clean == source
        chosen = noisy.selected & members
        if source in MNIST_ASYMMETRIC:
            assert int(chosen.sum()) == exact_count(rate, int(members.sum()))
            assert (noisy.labels[chosen] == MNIST_ASYMMETRIC[source]).all()
        else:
            assert not chosen.any()
            assert (noisy.labels[members] == source).all()
    np.testing.assert_array_equal(noisy.labels[~noisy.selected], clean[~noisy.selected])


def test_asymmetric_without_a_map_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        corrupt_labels(balanced_labels(100), C, "asymmetric", 0.2, np.random.default_rng(0), None)
    assert info.value.field == "noise.type"


def test_random_noise_effective_rate_is_about_rate_times_one_minus_one_over_c():
    n, rate = 20000, 0.4
    noisy = corrupt_labels(balanced_labels(n), C, "random", rate, np.random.default_rng(6))
    assert int(noisy.selected.sum()) == exact_count(rate, n)
    # 8000 draws, each keeps its label with probability 1/10: sd of the rate ≈ 0.0013, bound ≈ 8 sd
    assert abs(noisy.effective_rate - rate * (1 - 1 / C)) < 0.01
    assert noisy.noisy.sum() < noisy.selected.sum()  # some drawn labels stayed the true one
    assert not (noisy.noisy & ~noisy.selected).any()


@pytest.mark.parametrize("kind", ["random", "symmetric", "pairflip", "asymmetric"])
def test_zero_rate_changes_nothing(kind):
    clean = balanced_labels(300)
    noisy = corrupt_labels(clean, C, kind, 0.0, np.random.default_rng(0), MNIST_ASYMMETRIC)
    np.testing.assert_array_equal(noisy.labels, clean)
    assert not noisy.selected.any() and noisy.effective_rate == 0.0


def test_same_stream_same_noise_other_stream_other_noise():
    clean = balanced_labels(1000)
    first = corrupt_labels(clean, C, "symmetric", 0.2, np.random.default_rng(7))
    again = corrupt_labels(clean, C, "symmetric", 0.2, np.random.default_rng(7))
    other = corrupt_labels(clean, C, "symmetric", 0.2, np.random.default_rng(8))
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.selected, other.selected)


# -- prepare_data: the whole data set with noise applied -------------------------------------------------


def test_prepare_data_corrupts_training_labels_only(data_dir):
    raw = load_digits_data(data_dir)
    data = prepare_data(DataConfig(name="digits"), NoiseConfig(type="symmetric", rate=0.4), 0, data_dir)
    torch.testing.assert_close(data.x_test, raw.x_test, rtol=0, atol=0)
    assert torch.equal(data.y_test, raw.y_test)
    assert torch.equal(data.y_train_clean, raw.y_train)
    assert torch.equal(data.x_train, raw.x_train)
    assert data.num_train == 1203 and len(data.y_test) == 594
    assert int(data.selected.sum()) == exact_count(0.4, 1203) == 482
    assert torch.equal(data.noisy, data.y_train != data.y_train_clean)
    assert torch.equal(data.noisy, data.selected)  # symmetric noise always changes the label
    summary = data.noise_summary()
    assert summary["noisy_examples"] == 482 and summary["nominal_rate"] == 0.4
    assert summary["effective_rate"] == pytest.approx(482 / 1203)


def test_prepare_data_subset_keeps_matching_rows(data_dir):
    raw = load_digits_data(data_dir)
    data = prepare_data(DataConfig(name="digits", subset=200), NoiseConfig(rate=0.2), 0, data_dir)
    assert data.num_train == 200 and int(data.selected.sum()) == 40
    # every kept row is a raw training row with its own clean label, the test set is whole
    rows = {tuple(row): int(label) for row, label in zip(raw.x_train.tolist(), raw.y_train.tolist(), strict=True)}
    for row, label in zip(data.x_train.tolist(), data.y_train_clean.tolist(), strict=True):
        assert rows[tuple(row)] == label
    assert torch.equal(data.y_test, raw.y_test)


def test_noise_does_not_depend_on_model_or_training(data_dir, small_config):
    base = small_config({"noise.rate": 0.4})
    others = [
        base.with_overrides({"model.hidden": [8], "model.init": "default"}),
        base.with_overrides({"training.batch_size": 16, "training.lr": 0.5, "training.optimizer": "sgd"}),
        base.with_overrides({"pruning.score": "random", "retraining.mode": "scratch", "experiment.levels": 7}),
    ]
    reference = prepare(base, data_dir).data
    for config in others:
        data = prepare(config, data_dir).data
        assert torch.equal(data.y_train, reference.y_train)
        assert torch.equal(data.x_train, reference.x_train)


def test_noise_does_not_move_the_other_streams(data_dir, small_config):
    """Changing the noise rate or type keeps the subset, the initial weights and the batch order."""
    low = prepare(small_config({"noise.rate": 0.2}), data_dir)
    high = prepare(small_config({"noise.rate": 0.45, "noise.type": "pairflip"}), data_dir)
    assert not torch.equal(low.data.y_train, high.data.y_train)
    assert torch.equal(low.data.x_train, high.data.x_train)
    assert torch.equal(low.data.y_train_clean, high.data.y_train_clean)
    low_state, high_state = low.model.state_dict(), high.model.state_dict()
    assert all(torch.equal(low_state[key], high_state[key]) for key in low_state)
    assert torch.equal(low.data.epoch_order(0, 3), high.data.epoch_order(0, 3))


def test_different_seeds_give_different_noise(data_dir):
    noise = NoiseConfig(type="symmetric", rate=0.2)
    first = prepare_data(DataConfig(), noise, 0, data_dir)
    second = prepare_data(DataConfig(), noise, 1, data_dir)
    again = prepare_data(DataConfig(), noise, 0, data_dir)
    assert torch.equal(first.y_train, again.y_train)
    assert not torch.equal(first.selected, second.selected)
    assert int(first.selected.sum()) == int(second.selected.sum())
