"""Re-dense training (the paper's first flatness check): restore a level's pruned weights at zero,
make every weight trainable again (an all-True mask) and train the dense network further from the
level's final weights with the one training loop, at a constant learning rate.

Defaults follow the paper (160 epochs at the schedule's last LR): the run's ``training.duration`` at
the learning rate its schedule ends with. A schedule that anneals to (almost) zero, such as cosine,
has no usable last LR; below ``MIN_FRACTION`` of the base LR the re-dense LR is ``MIN_FRACTION`` x
the base LR instead, the ratio of the paper's CIFAR schedule (0.1 -> 0.001). The chosen LR and
length are in the table and in the cache folder's options.json.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from sddlab import pruning
from sddlab.analyses.cache import AnalysisCache, AnalysisResult, level_item, say
from sddlab.analyses.levels import AnalysedRun, OpenedLevel, Weights, as_run
from sddlab.config import TrainingConfig
from sddlab.duration import Duration
from sddlab.errors import ConfigError
from sddlab.figures.panels import redense_figure
from sddlab.metrics import measure
from sddlab.training import Schedule, Span

MIN_FRACTION = 0.01


def final_lr(training: TrainingConfig, per_epoch: int) -> float:
    """The LR at the schedule's last iteration, or MIN_FRACTION x base when it anneals below that."""
    schedule = Schedule.from_config(training, per_epoch)
    last = schedule(max(training.duration.iterations(per_epoch) - 1, 0))
    return max(last, MIN_FRACTION * training.lr)


@dataclasses.dataclass(frozen=True)
class RedenseSettings:
    """The run's training settings at a constant LR for the re-dense length, and that length in iterations."""

    training: TrainingConfig
    iterations: int

    @property
    def lr(self) -> float:
        return self.training.lr

    @property
    def duration(self) -> str:
        return str(self.training.duration)

    def options(self) -> dict[str, Any]:
        return {"version": 1, "duration": self.duration, "lr": self.lr}

    def span(self, run: AnalysedRun, stream: str) -> Span:
        """Iterations [0, iterations) at the constant LR, in the run's data order, augmented from `stream`."""
        schedule = Schedule(base_lr=self.lr, total=self.iterations)
        return Span(self.training, schedule, 0, self.iterations, run.setup.per_epoch, run.seed, stream)


def settings(run: AnalysedRun, duration: str | None = None, lr: float | None = None) -> RedenseSettings:
    """Resolve the defaults: the run's training length at its final (constant) learning rate."""
    config, per_epoch = run.config.training, run.setup.per_epoch
    try:
        length = Duration.parse(duration) if duration is not None else config.duration
    except ValueError as error:
        raise ConfigError("duration", duration, str(error)) from None
    iterations = length.iterations(per_epoch)
    if iterations <= 0:
        raise ConfigError("duration", duration, "a positive duration")
    if lr is not None and lr <= 0:
        raise ConfigError("lr", lr, "a positive learning rate")
    lr = float(lr) if lr is not None else final_lr(config, per_epoch)
    training = config.model_copy(update={"lr": lr, "schedule": "constant", "warmup": Duration(0, "it"),
                                         "duration": length})
    return RedenseSettings(training, iterations)


def redense_level(opened: OpenedLevel, chosen: RedenseSettings, cache: AnalysisCache,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Train one level's re-dense network (weights saved in the cache); rows for sparse and re-dense."""
    run = opened.run
    model = opened.model()  # pruned weights restored at exactly zero
    params = dict(model.named_parameters())
    sparse = {name: params[name].detach().clone() for name in opened.mask}
    before = measure(model, run.setup.data, run.runtime)
    every = pruning.dense_mask(model, run.setup.prunable)
    run.train(model, every, chosen.span(run, f"redense-{opened.item}"), f"re-dense level {opened.level}", progress)
    after = measure(model, run.setup.data, run.runtime)
    cache.save_weights(opened.item, model.state_dict())
    moved = sum(float(((params[n].detach() - sparse[n]).double() ** 2).sum()) for n in opened.mask) ** 0.5
    regrown = sum(float(((params[n].detach() * ~keep).double() ** 2).sum()) for n, keep in opened.mask.items()) ** 0.5
    common = {"lr": chosen.lr, "iterations": chosen.iterations}
    return [
        opened.row(**common, model="sparse", **before, moved=0.0, regrown=0.0),
        opened.row(**common, model="redense", **after, moved=moved, regrown=regrown),
    ]


def redense(run: AnalysedRun | str | Path, levels: list[int] | None = None, *, duration: str | None = None,
            lr: float | None = None, progress: bool = True, data_dir: str | Path | None = None,
            device: str = "auto") -> AnalysisResult:
    """Re-dense training of the given (default: all finished) levels; tidy rows per (level, model).

    ``model`` is ``sparse`` (the level's own weights) or ``redense``; ``moved`` is ||w_redense - w_sparse||
    and ``regrown`` the norm of the re-dense weights at the formerly pruned coordinates.
    ``extra['settings']`` is the resolved `RedenseSettings`.
    """
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    chosen = settings(run, duration, lr)
    cache = AnalysisCache(run.dir, "redense", chosen.options())
    todo = cache.missing(levels)
    if todo:
        say(f"re-dense: {len(todo)} levels x {chosen.iterations:,} iterations = {len(todo) * chosen.iterations:,} "
            f"iterations at constant LR {chosen.lr:.3g} ({chosen.duration})", progress)
    table = run.per_level(cache, levels, lambda opened: redense_level(opened, chosen, cache, progress),
                          desc="re-dense", progress=progress)
    line = f"re-dense: {len(levels)} levels, {chosen.iterations} iterations at LR {chosen.lr:.3g}"
    return AnalysisResult("redense", table, redense_figure(table), cache.dir, summary=line,
                          compact=side_by_side(table), extra={"settings": chosen})


def redense_weights(run: AnalysedRun, chosen: RedenseSettings, level: int) -> Weights:
    """The cached re-dense weights of one level (trained by `redense` with the settings `chosen`)."""
    return AnalysisCache(run.dir, "redense", chosen.options()).load_weights(level_item(level), run.device)


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """One row per level: sparse and re-dense test / noisy-train accuracy and train loss side by side."""
    out = table.pivot_table(index=["level", "sparsity"], columns="model",
                            values=["test_acc", "train_acc_noisy", "train_loss"])
    out.columns = [f"{metric}_{model}" for metric, model in out.columns]
    return out.reset_index()


MINIMISERS = ("sparse", "redense")


def minimiser(run: AnalysedRun, levels: list[int], at: str, options: dict[str, Any] | None = None,
              progress: bool = True) -> tuple[Callable[[OpenedLevel], tuple[nn.Module, pruning.Mask]], dict[str, Any]]:
    """Where a landscape or curvature measure is taken: (opened level -> (model, mask), cache options).

    ``sparse``: the level's own network and mask. ``redense``: its re-dense minimiser (as the paper's
    Figs. 8 and 43), every weight trainable, trained first by `redense` with ``options`` where missing.
    """
    if at not in MINIMISERS:
        raise ConfigError("at", at, " or ".join(MINIMISERS))
    if at == "sparse":
        return (lambda opened: (opened.model(), opened.mask)), {}
    options = dict(options or {})
    redense(run, levels, progress=progress, **options)
    chosen = settings(run, options.get("duration"), options.get("lr"))

    def load(opened: OpenedLevel) -> tuple[nn.Module, pruning.Mask]:
        model = run.load_model(redense_weights(run, chosen, opened.level))
        return model, pruning.dense_mask(model, run.setup.prunable)

    return load, {"at": "redense", "redense": chosen.options()}
