"""The training loop's lockstep form: K seeds' spans stepped together through one stacked model.

It follows `sddlab.training.train` step for step (order of (seed, epoch), augmentation stream, LR by
absolute iteration, masked gradients and weights, one optimizer step); only the tensors carry a leading
seed dimension. Seed k's loss is its own batch mean, so its gradient is exactly a separate run's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from sddlab.data.device import DeviceData
from sddlab.data.registry import DatasetSpec
from sddlab.lockstep.fused_step import FusedStep
from sddlab.lockstep.stacked import StackedMLP
from sddlab.runtime import Runtime
from sddlab.seeds import stream_seed
from sddlab.training import EpochStats, Span

_IDENTITY = {field.name: field.default for field in dataclasses.fields(DatasetSpec)}["train_transform"]

StackedHook = Callable[[list[EpochStats]], None]


def check_spans(spans: Sequence[Span]) -> None:
    """Lockstep spans may differ in their seed only (same schedule, iterations, batch size, stream)."""
    first = dataclasses.replace(spans[0], seed=0)
    for span in spans[1:]:
        if dataclasses.replace(span, seed=0) != first:
            raise ValueError(f"lockstep spans differ beyond their seed: {span} vs {spans[0]}")


class _StackedBatches:
    """Each seed's epoch order gathered once; a step's (K, B, ...) inputs and (K, B) targets are slices."""

    def __init__(self, datas: Sequence[DeviceData], spans: Sequence[Span], epoch: int, runtime: Runtime):
        self.datas, self.runtime = datas, runtime
        self.identity = all(data.spec.train_transform is _IDENTITY for data in datas)
        orders = [data.epoch_order(span.seed, epoch) for data, span in zip(datas, spans, strict=True)]
        self.x = torch.stack([data.x_train[order] for data, order in zip(datas, orders, strict=True)])
        self.y = torch.stack([data.y_train[order] for data, order in zip(datas, orders, strict=True)])
        self.augment = [torch.Generator(device=data.device).manual_seed(
            stream_seed(span.seed, "augment", span.stream, epoch)) for data, span in zip(datas, spans, strict=True)]

    def __call__(self, batch: slice) -> tuple[torch.Tensor, torch.Tensor]:
        if self.identity:
            return self.x[:, batch], self.y[:, batch]
        inputs = [self.runtime.prepare_inputs(data.spec.train_transform(self.x[k, batch], self.augment[k]))
                  for k, data in enumerate(self.datas)]
        return torch.stack(inputs), self.y[:, batch]


def train_stacked(model: StackedMLP, masks: dict[str, torch.Tensor], datas: Sequence[DeviceData],
                  spans: Sequence[Span], optimizer: torch.optim.Optimizer, runtime: Runtime = Runtime(),
                  on_epoch: StackedHook | None = None, track: bool = False) -> None:
    """Train K spans in place; `masks` maps prunable names to (K, ...) keep-masks in the weights' dtype.

    Pruned weights are zeroed once and their gradients every step. Every optimizer here starts each
    level with zero state, so a pruned entry's momentum, second moment, weight-decay term and update all
    stay exactly zero. The ordinary loop's second, post-step weight mask is therefore a no-op, and it is
    skipped here. The float64 equality tests cover every mode.
    """
    check_spans(spans)
    span = spans[0]
    if span.start >= span.end:
        return
    per_epoch, batch_size, seeds = span.per_epoch, span.training.batch_size, model.seeds
    stacks = model.named_stacks()
    pruned = [name for name, keep in masks.items() if not bool(keep.all())]
    params, keeps = [stacks[name] for name in pruned], [masks[name] for name in pruned]
    with torch.no_grad():
        if params:
            torch._foreach_mul_(params, keeps)
    model.train()
    update = FusedStep(optimizer)  # optimizer.step()'s numbers without its per-call Python
    lr = 0.0
    for epoch in range(span.start // per_epoch, span.last_epoch):
        began = time.monotonic()
        batches = _StackedBatches(datas, spans, epoch, runtime)
        loss_sum = torch.zeros(seeds, device=batches.x.device)
        correct = torch.zeros(seeds, device=batches.x.device, dtype=torch.long)
        seen = 0
        first, stop = max(span.start - epoch * per_epoch, 0), min(span.end - epoch * per_epoch, per_epoch)
        for position in range(first, stop):
            inputs, targets = batches(slice(position * batch_size, (position + 1) * batch_size))
            lr = span.schedule(epoch * per_epoch + position)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if runtime.amp:  # bf16 autocast goes through autograd; full precision takes the hand-written pass
                with runtime.autocast():
                    logits = model(inputs)
                    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
                    loss = losses.view(seeds, -1).mean(1)
                optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()
            else:
                loss, logits = model.loss_and_gradients(inputs, targets)
            if params:
                torch._foreach_mul_([p.grad for p in params], keeps)
            update()  # no weight re-masking needed: see the note on `train_stacked`
            if track:
                with torch.no_grad():
                    loss_sum.add_(loss.detach().float(), alpha=targets.shape[1])
                    correct.add_((logits.argmax(2) == targets).sum(1))
            seen += targets.shape[1]
        if on_epoch is not None:
            iteration = epoch * per_epoch + stop
            seconds = time.monotonic() - began
            stats = []
            for k in range(seeds):
                loss_k = float(loss_sum[k]) / seen if track and seen else None
                acc_k = float(correct[k]) / seen if track and seen else None
                stats.append(EpochStats(epoch + 1, span.last_epoch, iteration, loss_k, acc_k, lr, seconds,
                                        finished=iteration >= span.end))
            on_epoch(stats)
