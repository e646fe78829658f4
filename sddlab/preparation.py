"""Everything a run builds and checks before its run directory exists, and each level's training span."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sddlab import pruning
from sddlab.antidotes import check_entropy_model
from sddlab.config import Config
from sddlab.data import DATASETS
from sddlab.data.device import DeviceData, prepare_data
from sddlab.data.noise import noise_limit
from sddlab.errors import ConfigError
from sddlab.limits import check_model_fits, meta_model
from sddlab.models import build_model, prunable_names
from sddlab.models.build import resolve_ignored
from sddlab.runtime import Runtime
from sddlab.seeds import stream_seed
from sddlab.training import Schedule, Span


@dataclass
class Setup:
    """Everything validated and built before the run directory exists: data, model, iteration counts."""

    config: Config
    data: DeviceData
    model: nn.Module
    prunable: list[str]
    ignored_weights: int  # weights of linear/conv layers never pruned (paper's sparsity denominator)
    per_epoch: int
    total: int  # iterations of one full training
    rewind_point: int
    runtime: Runtime


def check_config(config: Config) -> tuple[list[str], int]:
    """The rules that need the data set's classes and the model's layers but no data, checked on a `meta`
    model (milliseconds, no memory), so a sweep can check every point before any starts: the noise limit,
    entropy early stopping, ignored layers and the iterative levels. The prunable layers and the weights of
    the ignored ones."""
    spec = DATASETS[config.data.name]
    limit = noise_limit(config.noise.type, spec.num_classes)
    if limit is not None and config.noise.rate >= limit:
        raise ConfigError("noise.rate", config.noise.rate, f"below {limit:.3g} for {config.noise.type} noise on "
                          f"{spec.num_classes} classes (at or above it the true class is no longer the likeliest "
                          "label)")
    model = meta_model(config)
    if config.training.early_stop == "entropy":
        check_entropy_model(model)
    ignored = resolve_ignored(config.model, model)
    prunable = prunable_names(model, ignored)
    if not prunable:
        raise ConfigError("model.ignored", list(ignored), "a list that leaves at least one layer prunable")
    params = dict(model.named_parameters())
    ignored_weights = sum(params[f"{layer}.weight"].numel() for layer in ignored)
    cut = config.pruning
    if cut.strategy == "iterative":  # the official count may run out of weights before the last level
        total_weights = sum(params[name].numel() for name in prunable)
        pruning.check_levels(config.experiment.levels, total_weights, cut.fraction, ignored_weights, cut.count)
    return prunable, ignored_weights


def prepare(config: Config, data_dir: str | Path | None = None, runtime: Runtime = Runtime()) -> Setup:
    """Validate what needs the data and the model (ignored layers, durations) and build both."""
    check_model_fits(config, runtime.device)  # a model too large for the machine: one line, before any data loads
    prunable, ignored_weights = check_config(config)
    seed = config.experiment.seed
    data = prepare_data(config.data, config.noise, seed, data_dir, runtime.device)
    model = build_model(config.model, data.spec.input_shape, data.num_classes, stream_seed(seed, "init"))
    per_epoch = data.iterations_per_epoch(config.training.batch_size)
    total = config.training.duration.iterations(per_epoch)
    rewind_point = config.retraining.rewind_point.iterations(per_epoch)
    if rewind_point >= total:
        raise ConfigError("retraining.rewind_point", str(config.retraining.rewind_point),
                          f"a point before the end of training ({total} iterations)")
    model.to(runtime.device)
    runtime = dataclasses.replace(runtime, amp=config.training.precision == "bf16")  # precision is the config's
    # channels-last inputs for conv nets (the layout their fast kernels want, on the CPU too); others keep NCHW
    runtime = dataclasses.replace(
        runtime, channels_last=runtime.channels_last and any(isinstance(m, nn.Conv2d) for m in model.modules()))
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    if runtime.compile:
        model.compile()
    return Setup(config, data, model, prunable, ignored_weights, per_epoch, total, rewind_point, runtime)


def level_span(setup: Setup, level: int, stream: str | None = None) -> Span:
    """The iterations, schedule and optimizer settings a level trains with under the retraining mode.

    Rewind and lr-rewind train [rewind point, end) of the main schedule, scratch the whole of it, and
    finetune (after the dense level) a constant LR for its own length. `stream` names the span's
    augmentation stream (default: the level's own).
    """
    cfg, seed = setup.config, setup.config.experiment.seed
    stream = stream or f"level_{level:02d}"
    main = Schedule.from_config(cfg.training, setup.per_epoch)
    if cfg.retraining.mode == "scratch":
        return Span(cfg.training, main, 0, setup.total, setup.per_epoch, seed, stream)
    if level > 0 and cfg.retraining.mode == "finetune":
        lr = cfg.retraining.finetune_lr or cfg.training.lr
        end = (cfg.retraining.finetune_duration or cfg.training.duration).iterations(setup.per_epoch)
        training = cfg.training.model_copy(update={"lr": lr, "schedule": "constant"})
        return Span(training, Schedule(base_lr=lr, total=end), 0, end, setup.per_epoch, seed, stream)
    return Span(cfg.training, main, setup.rewind_point, setup.total, setup.per_epoch, seed, stream)
