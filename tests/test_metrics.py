"""Per-level measurements on hand-made tensors with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from sddlab.metrics import learning_distance, level_metrics


def test_learning_distance_counts_pruned_weights_as_zero_or_leaves_them_out():
    init = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([9.0])}
    learned = {"w": torch.tensor([[1.5, 7.0], [3.0, 2.0]]), "b": torch.tensor([0.0])}
    mask = {"w": torch.tensor([[True, False], [True, True]])}
    # the paper's D: the pruned learned weight counts as 0, so |2 - 0|^2 enters; b is not in the mask
    assert learning_distance(init, learned, mask, from_pruned_as_zero=True) == pytest.approx(math.sqrt(0.25 + 4 + 4))
    assert learning_distance(init, learned, mask, from_pruned_as_zero=False) == pytest.approx(math.sqrt(0.25 + 4))
    dense = {"w": torch.ones(2, 2, dtype=torch.bool)}
    assert learning_distance(init, init, dense, from_pruned_as_zero=True) == 0.0


def test_memorised_is_measured_on_the_noisy_examples_only():
    clean = torch.tensor([0, 1, 2, 3])
    noisy_labels = torch.tensor([0, 2, 2, 0])
    noisy = noisy_labels != clean
    predictions = torch.tensor([0, 2, 2, 3])  # fits example 1's noisy label, not example 3's
    metrics = level_metrics(predictions, noisy_labels, clean, noisy)
    assert metrics["memorized"] == 0.5
    assert metrics["train_acc_clean"] == 0.75
    assert math.isnan(level_metrics(predictions, clean, clean, clean != clean)["memorized"])
