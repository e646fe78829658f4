"""The one training loop: masked steps, LR schedule by absolute iteration, device-resident batches."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sddlab.config import TrainingConfig, to_iterations
from sddlab.data.device import DeviceData
from sddlab.pruning import Mask
from sddlab.seeds import stream_seed


class StopRequested(Exception):
    """Raised at an epoch boundary when the caller asked to stop; progress was checkpointed first."""


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
            total=to_iterations(training.duration, iterations_per_epoch),
            milestones=tuple(to_iterations(m, iterations_per_epoch) for m in training.milestones),
            gamma=training.gamma,
            warmup=to_iterations(training.warmup, iterations_per_epoch),
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
class Runtime:
    """How (not what) to compute: device and GPU fast-path switches. Never part of the config hash."""

    device: str = "cpu"
    amp: bool = True  # bf16 autocast, CUDA only
    channels_last: bool = True  # conv nets only (the plan turns it off for others)
    compile: bool = False  # torch.compile the model (in place, state keys unchanged)
    deterministic: bool = False  # CUDA: deterministic kernels, no cudnn autotuning
    eval_batch: int | None = None  # None: 1024 on the CPU (cache-friendly), 8192 on CUDA

    def configure_backends(self) -> None:
        """Process-wide switches: cudnn autotuning (or determinism) on CUDA, flushed denormals on CPU."""
        if self.is_cuda:
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.backends.cudnn.deterministic = self.deterministic
            torch.use_deterministic_algorithms(self.deterministic, warn_only=True)
            torch.backends.cuda.matmul.allow_tf32 = not self.deterministic
            torch.backends.cudnn.allow_tf32 = not self.deterministic
        else:
            torch.set_flush_denormal(True)  # denormals made late, very sparse levels 2-3x slower on CPU

    def prepare_inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    @property
    def eval_chunk(self) -> int:
        return self.eval_batch or (8192 if self.is_cuda else 1024)

    @property
    def is_cuda(self) -> bool:
        return torch.device(self.device).type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp and self.is_cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


@dataclass(frozen=True)
class EpochStats:
    """What one finished epoch reports to listeners (live curves, progress bars)."""

    epoch: int  # absolute, 1-based (a level rewound to iteration t starts past epoch 1)
    last_epoch: int  # the level's final epoch
    iteration: int  # absolute
    train_loss: float | None  # running mean over the epoch's batches (None unless tracked)
    train_acc: float | None  # running, on the noisy labels (None unless tracked)
    lr: float
    seconds: float
    test_acc: float | None = None  # only when the run asked for per-epoch evaluation


def make_optimizer(model: nn.Module, training: TrainingConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or Adam/AdamW; weight decay on all parameters, as the paper.

    The fused implementations are used where the device has them (about 25 % faster per step on a
    2-core CPU for the digits MLP); the arithmetic is the same.
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


def train(
    model: nn.Module,
    mask: Mask,
    data: DeviceData,
    training: TrainingConfig,
    optimizer: torch.optim.Optimizer,
    schedule: Callable[[int], float],
    *,
    start: int,
    end: int,
    seed: int,
    stream: str,
    runtime: Runtime = Runtime(),
    on_epoch: Callable[[EpochStats], None] | None = None,
    checkpoint: Callable[[int], None] | None = None,
    checkpoint_every: float = 60.0,
    should_stop: Callable[[], bool] | None = None,
    track: bool = False,
) -> None:
    """Train iterations [start, end) in place; batches are slices of the per-epoch order of (seed, epoch).

    `checkpoint(iteration)` is called at epoch boundaries every `checkpoint_every` seconds and before a
    requested stop, so an interrupted level resumes at that iteration with identical results.
    `track` adds the running train loss and accuracy to the epoch stats (a few small ops per step).
    """
    batch_size = training.batch_size
    per_epoch = data.iterations_per_epoch(batch_size)
    masked = MaskedParameters(model, mask)
    masked.mask_weights()
    model.train()
    transform = data.spec.train_transform
    augment = torch.Generator(device=data.device)
    last_epoch = math.ceil(end / per_epoch)
    last_checkpoint = time.monotonic()
    epoch_start = time.monotonic()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.long)
    seen = 0
    x_epoch = y_epoch = None
    for iteration in range(start, end):
        epoch, position = divmod(iteration, per_epoch)
        if x_epoch is None or position == 0:  # one gather per epoch; batches are then contiguous slices
            order = data.epoch_order(seed, epoch)
            x_epoch, y_epoch = data.x_train[order], data.y_train[order]
            augment.manual_seed(stream_seed(seed, "augment", stream, epoch))
        batch = slice(position * batch_size, (position + 1) * batch_size)
        inputs = runtime.prepare_inputs(transform(x_epoch[batch], augment))
        targets = y_epoch[batch]
        lr = schedule(iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with runtime.autocast():
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        masked.mask_grads()
        optimizer.step()
        masked.mask_weights()
        if track:
            with torch.no_grad():
                loss_sum.add_(loss.detach(), alpha=len(targets))
                correct.add_((logits.argmax(1) == targets).sum())
        seen += len(targets)
        if position == per_epoch - 1 or iteration == end - 1:
            if on_epoch is not None:
                on_epoch(
                    EpochStats(
                        epoch=epoch + 1, last_epoch=last_epoch, iteration=iteration + 1,
                        train_loss=float(loss_sum) / seen if track else None,
                        train_acc=float(correct) / seen if track else None, lr=lr,
                        seconds=time.monotonic() - epoch_start,
                    )
                )
            loss_sum.zero_()
            correct.zero_()
            seen, epoch_start = 0, time.monotonic()
            stop = should_stop is not None and should_stop()
            if checkpoint is not None and iteration + 1 < end and (
                stop or time.monotonic() - last_checkpoint > checkpoint_every
            ):
                checkpoint(iteration + 1)
                last_checkpoint = time.monotonic()
            if stop and iteration + 1 < end:
                raise StopRequested(f"stopped at iteration {iteration + 1}")


@dataclass(frozen=True)
class Evaluation:
    loss: float
    acc: float
    predictions: torch.Tensor


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    runtime: Runtime = Runtime(),
) -> Evaluation:
    """Mean cross-entropy, accuracy and predictions over a whole tensor data set, in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    predictions = []
    chunk = runtime.eval_chunk
    for begin in range(0, len(y), chunk):
        inputs = runtime.prepare_inputs(transform(x[begin : begin + chunk]))
        targets = y[begin : begin + chunk]
        with runtime.autocast():
            logits = model(inputs).float()
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
        predictions.append(logits.argmax(1))
    model.train(was_training)
    predicted = torch.cat(predictions)
    return Evaluation(float(loss_sum) / len(y), float((predicted == y).double().mean()), predicted)
