"""The one training loop: masked steps, LR schedule by absolute iteration, device-resident batches."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sddlab.config import TrainingConfig
from sddlab.data.device import DeviceData
from sddlab.pruning import Mask
from sddlab.runtime import Runtime
from sddlab.seeds import stream_seed


@dataclass(frozen=True)
class Schedule:
    """Learning rate as a function of the absolute iteration: warm-up, then constant, multistep or cosine."""

    base_lr: float
    kind: str = "constant"
    total: int = 1
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup: int = 0

    @classmethod
    def from_config(cls, training: TrainingConfig, iterations_per_epoch: int) -> Schedule:
        return cls(
            base_lr=training.lr,
            kind=training.schedule,
            total=training.duration.iterations(iterations_per_epoch),
            milestones=tuple(m.iterations(iterations_per_epoch) for m in training.milestones),
            gamma=training.gamma,
            warmup=training.warmup.iterations(iterations_per_epoch),
        )

    def __call__(self, iteration: int) -> float:
        lr = self.base_lr
        if self.kind == "multistep":
            lr *= self.gamma ** sum(iteration >= m for m in self.milestones)
        elif self.kind == "cosine":
            lr *= 0.5 * (1.0 + math.cos(math.pi * min(iteration, self.total) / self.total))
        if self.warmup and iteration < self.warmup:
            lr *= (iteration + 1) / self.warmup
        return lr


@dataclass(frozen=True)
class Span:
    """One stretch of training under one optimizer: iterations [start, end) of `schedule`.

    `seed` and `stream` name the random streams of the data order (seed, epoch) and of augmentation
    (seed, stream, epoch), so a span resumed at an epoch boundary continues exactly.
    """

    training: TrainingConfig
    schedule: Schedule
    start: int
    end: int
    per_epoch: int
    seed: int
    stream: str

    @property
    def epochs(self) -> int:
        """Epochs the span trains in (a span that starts mid-epoch counts that epoch)."""
        return -(-self.end // self.per_epoch) - self.start // self.per_epoch

    @property
    def last_epoch(self) -> int:
        return math.ceil(self.end / self.per_epoch)

    def resumed_at(self, iteration: int) -> Span:
        return dataclasses.replace(self, start=iteration)


@dataclass(frozen=True)
class EpochStats:
    """What one finished epoch reports to the epoch-end hook (live curves, progress, checkpoints)."""

    epoch: int  # absolute, 1-based (a level rewound to iteration t starts past epoch 1)
    last_epoch: int  # the span's final epoch
    iteration: int  # absolute, the first iteration not yet trained
    train_loss: float | None  # mean over the epoch's batches (None unless tracked)
    train_acc: float | None  # on the noisy labels (None unless tracked)
    lr: float
    seconds: float
    test_acc: float | None = None  # only when the experiment evaluates every epoch
    finished: bool = False  # True at the span's last epoch


EpochHook = Callable[[EpochStats], None]


def make_optimizer(model: nn.Module, training: TrainingConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or Adam/AdamW; weight decay on all parameters, as the paper.

    The fused implementations are used where the device has them (one kernel for all parameters instead
    of several per tensor); the arithmetic is the same.
    """
    params = list(model.parameters())
    if training.optimizer == "sgd":
        optimizer_class, options = torch.optim.SGD, {
            "momentum": training.momentum, "nesterov": training.nesterov, "weight_decay": training.weight_decay
        }
    else:
        optimizer_class = torch.optim.Adam if training.optimizer == "adam" else torch.optim.AdamW
        options = {"betas": training.betas, "weight_decay": training.weight_decay}
    try:
        return optimizer_class(params, lr=training.lr, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):
        return optimizer_class(params, lr=training.lr, foreach=True, **options)


class MaskedParameters:
    """Keeps pruned weights and their gradients exactly zero, so no optimizer state can revive them."""

    def __init__(self, model: nn.Module, mask: Mask):
        params = dict(model.named_parameters())
        pruned = [name for name in mask if not bool(mask[name].all())]  # all-True masks need no work
        self.params = [params[name] for name in pruned]
        self.masks = [mask[name].to(device=params[name].device, dtype=params[name].dtype) for name in pruned]

    def mask_grads(self) -> None:
        grads = [p.grad for p in self.params]
        if all(g is not None for g in grads):
            if grads:
                torch._foreach_mul_(grads, self.masks)
        else:  # a parameter unused in this forward has no gradient
            for grad, keep in zip(grads, self.masks, strict=True):
                if grad is not None:
                    grad.mul_(keep)

    @torch.no_grad()
    def mask_weights(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)


class _EpochTally:
    """Running train loss and accuracy over one epoch, kept on the device (a few small ops per step)."""

    def __init__(self, device: torch.device, track: bool):
        self.track = track
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.seen = 0

    @torch.no_grad()
    def add(self, logits: torch.Tensor, loss: torch.Tensor, targets: torch.Tensor) -> None:
        if self.track:
            self.loss.add_(loss.detach(), alpha=len(targets))
            self.correct.add_((logits.argmax(1) == targets).sum())
        self.seen += len(targets)

    def means(self) -> tuple[float | None, float | None]:
        if not self.track or self.seen == 0:
            return None, None
        return float(self.loss) / self.seen, float(self.correct) / self.seen


def train(
    model: nn.Module,
    mask: Mask,
    data: DeviceData,
    span: Span,
    optimizer: torch.optim.Optimizer,
    runtime: Runtime = Runtime(),
    on_epoch: EpochHook | None = None,
    track: bool = False,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Train `span` in place; batches are contiguous slices of the epoch's order of (seed, epoch).

    `on_epoch` runs at every epoch end (checkpoints, stop requests and live figures live there);
    `track` adds the epoch's running train loss and accuracy to its stats; `loss_fn(logits, inputs,
    targets)` replaces the mean cross-entropy (distillation).
    """
    if span.start >= span.end:
        return
    per_epoch, batch_size = span.per_epoch, span.training.batch_size
    masked = MaskedParameters(model, mask)
    masked.mask_weights()
    model.train()
    augment = torch.Generator(device=data.device)
    lr = 0.0  # set at every step; every epoch of a non-empty span has one
    for epoch in range(span.start // per_epoch, span.last_epoch):
        began, tally = time.monotonic(), _EpochTally(data.device, track)
        order = data.epoch_order(span.seed, epoch)  # one gather per epoch; batches are then slices
        x_epoch, y_epoch = data.x_train[order], data.y_train[order]
        augment.manual_seed(stream_seed(span.seed, "augment", span.stream, epoch))
        first, stop = max(span.start - epoch * per_epoch, 0), min(span.end - epoch * per_epoch, per_epoch)
        for position in range(first, stop):
            batch = slice(position * batch_size, (position + 1) * batch_size)
            inputs = runtime.prepare_inputs(data.spec.train_transform(x_epoch[batch], augment))
            targets = y_epoch[batch]
            lr = span.schedule(epoch * per_epoch + position)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with runtime.autocast():
                logits = model(inputs)
                loss = F.cross_entropy(logits, targets) if loss_fn is None else loss_fn(logits, inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            masked.mask_grads()
            optimizer.step()
            masked.mask_weights()
            tally.add(logits, loss, targets)
        if on_epoch is not None:
            iteration = epoch * per_epoch + stop
            train_loss, train_acc = tally.means()
            on_epoch(EpochStats(epoch + 1, span.last_epoch, iteration, train_loss, train_acc, lr,
                                time.monotonic() - began, finished=iteration >= span.end))
