"""Level measurements: evaluation, memorisation of noisy labels and the paper's learning distance."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sddlab.confidence import calibration_fields
from sddlab.data.device import DeviceData
from sddlab.pruning import Mask
from sddlab.runtime import Runtime


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode for the block and restore each one's own flag afterwards."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean cross-entropy
    acc: float
    predictions: torch.Tensor
    confidence: torch.Tensor | None = None  # each example's top softmax probability (float64)


def _merged_state(
    model: nn.Module, state: Mapping[str, torch.Tensor] | None, mask: Mapping[str, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers, overridden by `state`, with `mask` applied (nothing modified)."""
    full = {name: t.detach() for name, t in [*model.named_parameters(), *model.named_buffers()]}
    unknown = sorted(set(state or {}) - set(full))
    if unknown:
        raise KeyError(f"state names not in the model: {', '.join(unknown[:5])}")
    full.update(state or {})
    for name, keep in (mask or {}).items():
        full[name] = full[name] * keep.to(full[name].device)
    return full


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    runtime: Runtime = Runtime(),
    state: Mapping[str, torch.Tensor] | None = None,
    mask: Mapping[str, torch.Tensor] | None = None,
    chunk: int | None = None,
) -> Evaluation:
    """Mean cross-entropy, accuracy and predictions over a whole tensor data set, in eval mode.

    `state` overrides parameters and buffers by name and `mask` zeroes pruned weights, both through
    `functional_call`, so the model itself is never modified (interpolation paths, loss curves).
    """
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need non-empty x and y of equal length, got {len(x)} and {len(y)}")
    weights = _merged_state(model, state, mask) if state is not None or mask is not None else None
    chunk = chunk or runtime.eval_chunk
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    predictions, confidence = [], []
    with eval_mode(model):
        for begin in range(0, len(y), chunk):
            inputs = x[begin : begin + chunk]
            inputs = runtime.prepare_inputs(transform(inputs) if transform is not None else inputs)
            targets = y[begin : begin + chunk]
            with runtime.autocast():
                logits = model(inputs) if weights is None else functional_call(model, weights, (inputs,))
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
            predictions.append(logits.argmax(1))
            confidence.append(logits.double().softmax(1).amax(1))
    predicted = torch.cat(predictions)
    return Evaluation(float(loss_sum) / len(y), float((predicted == y).double().mean()), predicted,
                      torch.cat(confidence))


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
    for name, keep in mask.items():  # contiguous copies: the sum's order must not follow the memory layout
        final = weights[name].double().contiguous() * keep.contiguous()  # (channels-last in memory, not on disk)
        ref = reference[name].to(final.device).double().contiguous()
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


def test_calibration(test: Evaluation, labels: torch.Tensor) -> dict[str, float]:
    """ECE (15 equal-width bins), adaptive ECE (15 equal-mass bins) and mean confidence on the clean test
    set; with `test_loss` (the test NLL) they say how well the level's confidence matches its accuracy."""
    assert test.confidence is not None
    return calibration_fields(test.confidence.cpu().numpy(), (test.predictions == labels).cpu().numpy())


def measure(model: nn.Module, data: DeviceData, runtime: Runtime = Runtime(),
            augment: torch.Generator | None = None) -> dict[str, float]:
    """The accuracy part of a level record (see `measure_with_predictions`)."""
    return measure_with_predictions(model, data, runtime, augment)[0]


Predictions = dict[str, torch.Tensor]


def measure_with_predictions(model: nn.Module, data: DeviceData, runtime: Runtime = Runtime(),
                             augment: torch.Generator | None = None) -> tuple[dict[str, float], Predictions]:
    """A level's accuracies (test, noisy-label and clean-label train, memorised, held-out noisy), its test
    calibration (`test_calibration`) and the per-example predicted classes behind them ("train", "test",
    and "holdout" with `data.holdout`).

    With `augment` (a generator on the data's device) the training images pass through the training
    augmentation drawn from it, in eval mode (the paper's code measures its augmented training stream);
    without it they are only normalised.
    """
    test = evaluate(model, data.x_test, data.y_test, transform=data.spec.eval_transform, runtime=runtime)
    train_transform = data.spec.eval_transform
    if augment is not None:
        def train_transform(x: torch.Tensor) -> torch.Tensor:
            return data.spec.train_transform(x, augment)
    train = evaluate(model, data.x_train, data.y_train, transform=train_transform, runtime=runtime)
    extra = level_metrics(train.predictions, data.y_train, data.y_train_clean, data.noisy)
    fields = {"test_acc": test.acc, "test_loss": test.loss, "train_acc_noisy": train.acc,
              "train_acc_clean": extra["train_acc_clean"], "train_loss": train.loss, "memorized": extra["memorized"],
              **test_calibration(test, data.y_test)}
    predictions = {"train": train.predictions, "test": test.predictions}
    if data.x_holdout is not None:
        holdout = evaluate(model, data.x_holdout, data.y_holdout, transform=data.spec.eval_transform, runtime=runtime)
        fields["holdout_acc_noisy"] = holdout.acc
        predictions["holdout"] = holdout.predictions
    return fields, predictions


def example_labels(data: DeviceData) -> dict[str, torch.Tensor]:
    """The per-example labels a run's stored predictions are read against (noisy, clean, which are noisy)."""
    labels = {"train_noisy": data.y_train, "train_clean": data.y_train_clean, "noisy": data.noisy, "test": data.y_test}
    if data.y_holdout is not None:
        labels |= {"holdout_noisy": data.y_holdout, "holdout_clean": data.y_holdout_clean}
    return labels
