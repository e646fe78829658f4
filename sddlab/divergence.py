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

    def __init__(self, level: int, epoch: int, reason: str, advice: str):
        self.level, self.epoch, self.reason = level, epoch, reason
        where = f"level {level}" if level >= 0 else "the dense pre-training to the rewind point"
        super().__init__(f"{where} diverged at epoch {epoch}: {reason}; {advice}")


def loss_limit(num_classes: int) -> float:
    """The largest training loss that does not count as exploded: FACTOR times chance level."""
    return FACTOR * math.log(max(num_classes, 2))


@torch.no_grad()
def largest_weight(model: nn.Module) -> float:
    """The largest |parameter| of the model (nan or inf when any is not finite); reads no data, so it is
    cheap and changes nothing in training."""
    return max(float(p.detach().abs().max()) if p.numel() else 0.0 for p in model.parameters())


def advice(config: Config) -> str:
    """What to change, in `--set` terms."""
    lr = config.training.lr
    return (f"lower training.lr (now {lr:g}), e.g. --set training.lr={lr / 10:g}, or add a warm-up "
            "(--set training.warmup=1ep)")


def check_epoch(level: int, stats: EpochStats, model: nn.Module, data: DeviceData, config: Config) -> None:
    """Raise `Diverged` when the epoch's training loss (when tracked) is not finite or exploded, or the
    weights are not finite or beyond WEIGHT_LIMIT (an exploding loss drives them there within an epoch)."""
    loss, limit = stats.train_loss, loss_limit(data.num_classes)
    peak = largest_weight(model)
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
    raise Diverged(level, stats.epoch, reason, advice(config))


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
        reason = record.get("diverged")
        if isinstance(reason, str):
            raise SddError(reason)
