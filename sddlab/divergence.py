"""Divergence: a training loss or weights that are not finite or explode, caught once per epoch (one pass
over the weights), recorded as the level's reason, and reported as one line saying what to change."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sddlab import pruning
from sddlab.config import Config
from sddlab.data.device import DeviceData
from sddlab.errors import SddError
from sddlab.training import EpochStats

WEIGHT_LIMIT = 1e6  # a weight beyond this means training has exploded
FACTOR = 100.0  # a loss above FACTOR x ln(classes) (chance level) counts as exploded


class Diverged(SddError):
    """Training of a level diverged; the message names the level, the loss and what to change."""

    def __init__(self, level: int, epoch: int, summary: str, advice: str = ""):
        self.level, self.epoch, self.summary, self.advice = level, epoch, summary, advice
        super().__init__(f"{summary}; {advice}" if advice else summary)

    def __reduce__(self) -> tuple[Any, ...]:  # across process pools and clusters
        return type(self), (self.level, self.epoch, self.summary, self.advice)

    @classmethod
    def at(cls, level: int, epoch: int, reason: str, advice: str) -> Diverged:
        """'level L diverged at epoch E: REASON; ADVICE' (level -1: the pre-training to the rewind point)."""
        where = f"level {level}" if level >= 0 else "the dense pre-training to the rewind point"
        return cls(level, epoch, f"{where} diverged at epoch {epoch}: {reason}", advice)

    @classmethod
    def stored(cls, record: dict[str, Any]) -> Diverged:
        """The error a stored diverged level record stands for, with the message it was recorded with
        (written by `at`: its summary holds no '; ', the advice follows the first one)."""
        summary, _, advice = str(record["diverged"]).partition("; ")
        return cls(int(record["level"]), int(record.get("diverged_epoch", 0)), summary, advice)


class SeedsDiverged(SddError):
    """Seeds of a lockstep group diverged while the others went on: one line naming each seed and why."""

    def __init__(self, errors: dict[int, Diverged], seeds: int):
        """`errors`: seed -> why it diverged; `seeds`: how many seeds the group trained."""
        self.errors, self.seeds = dict(sorted(errors.items())), seeds
        parts = [f"seed {seed}: {error.summary}" for seed, error in self.errors.items()]
        advice = sorted({error.advice for error in self.errors.values() if error.advice})
        names = ("seeds " if len(errors) > 1 else "seed ") + ", ".join(map(str, self.errors))
        others = "" if len(errors) == seeds else " (the other seeds went on)"
        super().__init__(f"{names} diverged{others}: " + "; ".join(parts + advice))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.errors, self.seeds)


def loss_limit(num_classes: int) -> float:
    """The largest training loss that does not count as exploded: FACTOR times chance level."""
    return FACTOR * math.log(max(num_classes, 2))


@torch.no_grad()
def largest_weight(model: nn.Module) -> float:
    """The largest |parameter| of the model (nan or inf when any is not finite); reads no data, so it is
    cheap and changes nothing in training."""
    return max(float(p.detach().abs().max()) if p.numel() else 0.0 for p in model.parameters())


@torch.no_grad()
def largest_per_seed(stacks: list[torch.Tensor]) -> list[float]:
    """`largest_weight` of each seed of a lockstep group at once, from its (K, ...) stacked parameters."""
    peaks = torch.stack([stack.detach().abs().flatten(1).amax(1) for stack in stacks if stack[0].numel()])
    return peaks.amax(0).tolist()


def advice(config: Config, level: int = 0) -> str:
    """What to change, in `--set` terms: the learning rate the diverged level trained with (finetuning's own
    after the dense level, when set)."""
    retraining = config.retraining
    if level > 0 and retraining.mode == "finetune" and retraining.finetune_lr is not None:
        lr = retraining.finetune_lr
        return f"lower retraining.finetune_lr (now {lr:g}), e.g. --set retraining.finetune_lr={lr / 10:g}"
    lr = config.training.lr
    return (f"lower training.lr (now {lr:g}), e.g. --set training.lr={lr / 10:g}, or add a warm-up "
            "(--set training.warmup=1ep)")


def check_epoch(level: int, stats: EpochStats, model: nn.Module, data: DeviceData, config: Config,
                peak: float | None = None) -> None:
    """Raise `Diverged` when the epoch's training loss (when tracked) is not finite or exploded, or the
    weights are not finite or beyond WEIGHT_LIMIT (an exploding loss drives them there within an epoch).

    `peak` is the model's largest |weight| when the caller has it (a lockstep group reads every seed's at
    once from the stacked tensors); None reads it from `model`."""
    loss, limit = stats.train_loss, loss_limit(data.num_classes)
    peak = largest_weight(model) if peak is None else peak
    if loss is not None and not math.isfinite(loss):
        reason = f"training loss is {loss}"
    elif loss is not None and loss > limit:
        reason = f"training loss {loss:.3g} exploded (above {limit:.0f}, {FACTOR:g} x chance level)"
    elif not math.isfinite(peak):
        reason = f"weights are not finite ({peak})"
    elif peak > WEIGHT_LIMIT:
        reason = f"weights exploded (largest |w| {peak:.3g}, above {WEIGHT_LIMIT:g})"
    else:
        return
    raise Diverged.at(level, stats.epoch, reason, advice(config, level))


def diverged_record(level: int, mask: pruning.Mask, ignored_weights: int, error: Diverged) -> dict[str, Any]:
    """The level record of a diverged level: its sparsity and the reason; no measurements (they are
    meaningless), so tables show gaps and analyses skip it."""
    return {
        "level": level,
        **pruning.sparsity_fields(mask, ignored_weights),
        "diverged": str(error),
        "diverged_epoch": error.epoch,
    }


def stop_if_diverged(records: list[dict[str, Any]]) -> None:
    """A stored diverged level stops a rerun at once with the same line (training is deterministic)."""
    for record in records:
        if isinstance(record.get("diverged"), str):
            raise Diverged.stored(record)


def diverged_note(record: dict[str, Any]) -> str:
    """'level L: REASON at epoch E' of a stored diverged level record: the short why for lists of diverged runs."""
    error = Diverged.stored(record)
    reason = error.summary.partition(": ")[2] or error.summary
    return f"level {error.level}: {reason} at epoch {error.epoch}"


def is_diverged(record: dict[str, Any]) -> bool:
    """Whether a level record is a diverged level's (a `diverged` reason, no measurements, no checkpoint)."""
    return isinstance(record.get("diverged"), str)
