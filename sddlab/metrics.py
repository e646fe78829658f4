"""Per-level measurements: memorisation of noisy labels and the paper's learning distance."""

from __future__ import annotations

import math

import torch

from sddlab.pruning import Mask


@torch.no_grad()
def learning_distance(
    reference: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], mask: Mask, from_pruned_as_zero: bool
) -> float:
    """‖w_ref − w⊙m‖₂ over the masked (prunable) parameters.

    from_pruned_as_zero=True is the paper's D: every prunable coordinate counts, pruned weights as zero,
    so pruning itself moves the network away from its initialisation. False measures only the
    unpruned coordinates (how far training moved the surviving weights).
    """
    total = torch.zeros((), dtype=torch.float64)
    for name, keep in mask.items():
        final = weights[name].double() * keep
        ref = reference[name].to(final.device).double()
        diff = ref - final if from_pruned_as_zero else (ref - final) * keep
        total += diff.pow(2).sum().cpu()
    return math.sqrt(float(total))


@torch.no_grad()
def level_metrics(
    predictions: torch.Tensor, noisy_labels: torch.Tensor, clean_labels: torch.Tensor, noisy: torch.Tensor
) -> dict[str, float]:
    """Training-set accuracy against the true labels, and the fraction of noisy labels memorised."""
    clean_acc = float((predictions == clean_labels).double().mean())
    if int(noisy.sum()) == 0:
        memorized = math.nan
    else:
        memorized = float((predictions[noisy] == noisy_labels[noisy]).double().mean())
    return {"train_acc_clean": clean_acc, "memorized": memorized}
