"""Iterative magnitude pruning with four retraining modes, resumable level by level (and epoch by epoch)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sddlab import pruning
from sddlab.config import Config, to_iterations
from sddlab.data import DeviceData, prepare_data
from sddlab.errors import ConfigError
from sddlab.events import EpochEnded, LevelFinished, LevelStarted, Listener, RunFinished, RunStarted
from sddlab.metrics import learning_distance, level_metrics
from sddlab.models import build_model, prunable_names
from sddlab.models.build import resolve_ignored
from sddlab.seeds import stream_seed, torch_stream
from sddlab.store import RunStore
from sddlab.training import EpochStats, Runtime, Schedule, evaluate, make_optimizer, train

Weights = dict[str, torch.Tensor]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", device, "auto or cpu (no CUDA device is available)")
    return device


@dataclass
class Plan:
    """Everything validated and built before the run directory exists."""

    config: Config
    data: DeviceData
    model: nn.Module
    prunable: list[str]
    ignored_weights: int  # weights of linear/conv layers never pruned (paper's sparsity denominator)
    per_epoch: int
    total: int  # iterations of one full training
    rewind_point: int
    runtime: Runtime


def plan(config: Config, data_dir: str | Path = "data", runtime: Runtime = Runtime()) -> Plan:
    """Validate what needs the data and the model (ignored layers, durations) and build both."""
    seed = config.experiment.seed
    data = prepare_data(config.data, config.noise, seed, data_dir, runtime.device)
    model = build_model(config.model, data.spec.input_shape, data.num_classes, stream_seed(seed, "init"))
    ignored = resolve_ignored(config.model, model)
    prunable = prunable_names(model, ignored)
    if not prunable:
        raise ConfigError("model.ignored", list(ignored), "a list that leaves at least one layer prunable")
    params = dict(model.named_parameters())
    ignored_weights = sum(params[f"{layer}.weight"].numel() for layer in ignored)
    per_epoch = data.iterations_per_epoch(config.training.batch_size)
    total = to_iterations(config.training.duration, per_epoch)
    rewind_point = to_iterations(config.retraining.rewind_point, per_epoch)
    if rewind_point >= total:
        raise ConfigError("retraining.rewind_point", config.retraining.rewind_point,
                          f"a point before the end of training ({total} iterations)")
    model.to(runtime.device)
    # channels-last pays for conv nets (20-30 % per step on the CPU too); other models keep NCHW inputs
    runtime = dataclasses.replace(
        runtime, channels_last=runtime.channels_last and any(isinstance(m, nn.Conv2d) for m in model.modules()))
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    if runtime.compile:
        model.compile()
    return Plan(config, data, model, prunable, ignored_weights, per_epoch, total, rewind_point, runtime)


class Experiment:
    """Runs the levels of one config into its run directory; every finished level is kept."""

    def __init__(self, plan: Plan, store: RunStore, listener: Listener | None = None,
                 should_stop: Callable[[], bool] | None = None, checkpoint_every: float = 60.0,
                 epoch_metrics: bool = False):
        self.plan, self.store = plan, store
        self.config = plan.config
        self.model = plan.model
        self.listener = listener or (lambda event: None)
        self.should_stop = should_stop
        self.checkpoint_every = checkpoint_every
        self.epoch_metrics = epoch_metrics
        self.dense_final: Weights | None = None  # level 0's final weights (one-shot pruning starts there)
        self.seed = self.config.experiment.seed
        self.device = plan.runtime.device

    # -- weights ----------------------------------------------------------------------------------
    def _state(self) -> Weights:
        return {name: t.detach().clone() for name, t in self.model.state_dict().items()}

    def _load_state(self, state: Weights) -> None:
        self.model.load_state_dict(state)

    def _init_state(self) -> Weights:
        """The original dense initialisation: the freshly built model, or the stored one on resume."""
        if self.store.has_checkpoint("init"):
            return self.store.load_checkpoint("init", self.device)
        init = self._state()
        self.store.save_checkpoint("init", init)
        return init

    def _rewind_state(self, init: Weights) -> Weights:
        """The dense weights at the rewind iteration t (the init itself when t = 0)."""
        t = self.plan.rewind_point
        if t == 0:
            return init
        if self.store.has_checkpoint("rewind"):
            return self.store.load_checkpoint("rewind", self.device)
        self._load_state(init)
        dense = pruning.dense_mask(self.model, self.plan.prunable)
        self._train_span("pretrain", -1, dense, 0, t, Schedule.from_config(self.config.training, self.plan.per_epoch))
        rewind = self._state()
        self.store.save_checkpoint("rewind", rewind)
        return rewind

    # -- one span of training, resumable at epoch boundaries --------------------------------------
    def _train_span(self, tag: str, level: int, mask: pruning.Mask, start: int, end: int,
                    schedule: Schedule, training: Any = None) -> None:
        """Train [start, end) with a fresh optimizer, or continue from this span's partial checkpoint."""
        training = training or self.config.training
        optimizer = make_optimizer(self.model, training)
        partial = f"partial-{tag}"
        if self.store.has_checkpoint(partial):
            start = self._restore_partial(partial, optimizer)

        def checkpoint(iteration: int) -> None:
            tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
            opt_tensors, opt_meta = _optimizer_tensors(optimizer)
            tensors.update(opt_tensors)
            self.store.save_checkpoint(partial, tensors, {"iteration": str(iteration), "optimizer": opt_meta})

        def on_epoch(stats: EpochStats) -> None:
            if self.epoch_metrics:  # evaluation touches no RNG and no BN statistics: results unchanged
                data = self.plan.data
                test = evaluate(self.model, data.x_test, data.y_test, data.spec.eval_transform, self.plan.runtime)
                stats = dataclasses.replace(stats, test_acc=test.acc)
            self.listener(EpochEnded(level, stats))

        train(self.model, mask, self.plan.data, training, optimizer, schedule, start=start, end=end, seed=self.seed,
              stream=tag, runtime=self.plan.runtime, on_epoch=on_epoch, checkpoint=checkpoint,
              checkpoint_every=self.checkpoint_every, should_stop=self.should_stop, track=self.epoch_metrics)

    def _restore_partial(self, partial: str, optimizer: torch.optim.Optimizer) -> int:
        from sddlab.store import load_metadata

        path = self.store.checkpoint_path(partial)
        meta = load_metadata(path)
        tensors = self.store.load_checkpoint(partial, self.device)
        self._load_state({k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")})
        _restore_optimizer(optimizer, tensors, meta["optimizer"])
        return int(meta["iteration"])

    # -- the levels -------------------------------------------------------------------------------
    def level_plan(self, level: int) -> tuple[int, int, Schedule, Any]:
        """(start, end, schedule, training config) of a level under the retraining mode."""
        cfg, plan = self.config, self.plan
        mode = cfg.retraining.mode
        main = Schedule.from_config(cfg.training, plan.per_epoch)
        if mode == "scratch":
            return 0, plan.total, main, cfg.training
        if level > 0 and mode == "finetune":
            lr = cfg.retraining.finetune_lr or cfg.training.lr
            duration = cfg.retraining.finetune_duration or cfg.training.duration
            end = to_iterations(duration, plan.per_epoch)
            training = cfg.training.model_copy(update={"lr": lr, "schedule": "constant", "warmup": "0it"})
            return 0, end, Schedule(base_lr=lr, total=end), training
        return plan.rewind_point, plan.total, main, cfg.training

    def epochs_of(self, level: int) -> int:
        start, end, _, _ = self.level_plan(level)
        per_epoch = self.plan.per_epoch
        return -(-end // per_epoch) - start // per_epoch

    def _next_mask(self, level: int, mask: pruning.Mask) -> pruning.Mask:
        """Iterative: prune `fraction` of what the previous level kept, scored on its final weights.
        One-shot: prune the dense level's final weights straight to sparsity 1 - (1 - fraction)^level."""
        cfg = self.config.pruning
        fraction = cfg.fraction
        if cfg.strategy == "oneshot":
            self._load_state(self.dense_final)
            mask = pruning.dense_mask(self.model, self.plan.prunable)
            fraction = 1.0 - (1.0 - cfg.fraction) ** level
        if cfg.score == "magnitude":
            scores = pruning.magnitude_scores(self.model, mask)
        elif cfg.score == "random":
            scores = pruning.random_scores(mask, torch_stream(self.seed, "prune-random", level))
        else:
            data = self.plan.data
            generator = torch_stream(self.seed, "prune-gradient", level)
            index = torch.randperm(data.num_train, generator=generator)[: self.config.training.batch_size]
            index = index.to(data.device)

            def loss_fn(model: nn.Module) -> torch.Tensor:
                inputs = data.spec.eval_transform(data.x_train[index])
                return nn.functional.cross_entropy(model(inputs), data.y_train[index])

            scores = pruning.gradient_scores(self.model, mask, loss_fn)
        return pruning.prune_mask(scores, mask, fraction, cfg.scope)

    def _start_state(self, level: int, init: Weights, rewind: Weights, previous: Weights | None) -> Weights:
        mode = self.config.retraining.mode
        if mode == "scratch":
            if level == 0:
                return init
            seed = stream_seed(self.seed, "scratch-init", level)
            fresh = build_model(self.config.model, self.plan.data.spec.input_shape, self.plan.data.num_classes, seed)
            return {k: v.to(self.device) for k, v in fresh.state_dict().items()}
        if level == 0 or mode == "rewind":
            return rewind
        return previous  # finetune and lr-rewind continue from the previous level's weights

    def run(self) -> Path:
        levels = self.config.experiment.levels + 1
        finished = sum(self.store.has_level(level) for level in range(levels))
        self.listener(RunStarted(self.store.dir, levels, finished, [self.epochs_of(lv) for lv in range(levels)]))
        init = self._init_state()
        rewind = self._rewind_state(init)
        mask = pruning.dense_mask(self.model, self.plan.prunable)
        previous: Weights | None = None
        for level in range(levels):
            if self.store.has_level(level):
                mask, previous = self.store.load_level_state(level, self.device)
                self.dense_final = previous if level == 0 else self.dense_final
                self.listener(LevelFinished(self.store.records()[level], cached=True))
                continue
            began = time.perf_counter()
            if level > 0:
                self._load_state(previous)
                mask = self._next_mask(level, mask)
            self.listener(LevelStarted(level, pruning.sparsity(mask), pruning.remaining(mask)))
            start_state = self._start_state(level, init, rewind, previous)
            start, end, schedule, training = self.level_plan(level)
            if not self.store.has_checkpoint(f"partial-level_{level:02d}"):
                self._load_state(start_state)
            self._train_span(f"level_{level:02d}", level, mask, start, end, schedule, training)
            final = self._state()
            record = self._record(level, mask, init, rewind, start_state, end - start)
            record["seconds"] = round(time.perf_counter() - began, 3)
            self.store.save_level_state(level, mask, final)
            self.store.save_level(level, record)
            self.store.remove_checkpoint(f"partial-level_{level:02d}")
            self.listener(LevelFinished(record))
            previous = final
            self.dense_final = final if level == 0 else self.dense_final
        self.store.remove_checkpoint("partial-pretrain")
        self.store.update_meta(finished=True)
        self.listener(RunFinished(self.store.dir))
        return self.store.dir

    def _record(self, level: int, mask: pruning.Mask, init: Weights, rewind: Weights, start: Weights,
                iterations: int) -> dict[str, Any]:
        data, runtime = self.plan.data, self.plan.runtime
        params = dict(self.model.named_parameters())
        weights = {name: params[name].detach() for name in mask}
        test = evaluate(self.model, data.x_test, data.y_test, data.spec.eval_transform, runtime)
        train_noisy = evaluate(self.model, data.x_train, data.y_train, data.spec.eval_transform, runtime)
        metrics = level_metrics(train_noisy.predictions, data.y_train, data.y_train_clean, data.noisy)
        kept, total = pruning.remaining(mask), pruning.total(mask)
        ignored = self.plan.ignored_weights
        return {
            "level": level,
            "sparsity": 1.0 - kept / total,
            "remaining": kept,
            "sparsity_paper": 1.0 - (kept + ignored) / (total + ignored),
            "remaining_paper": kept + ignored,
            "test_acc": test.acc,
            "test_loss": test.loss,
            "train_acc_noisy": train_noisy.acc,
            "train_acc_clean": metrics["train_acc_clean"],
            "train_loss": train_noisy.loss,
            "memorized": metrics["memorized"],
            "learning_distance": learning_distance(init, weights, mask, from_pruned_as_zero=True),
            "learning_distance_rewind": learning_distance(rewind, weights, mask, from_pruned_as_zero=False),
            "learning_distance_start": learning_distance(start, weights, mask, from_pruned_as_zero=False),
            "iterations": iterations,
            "seconds": 0.0,
        }


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Optimizer state as flat tensors plus JSON metadata (param groups, scalar state)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            elif value is not None:
                scalars[f"{index}/{key}"] = value
    meta = json.dumps({"param_groups": state["param_groups"], "scalars": scalars})
    return tensors, meta


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: str) -> None:
    decoded = json.loads(meta)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in decoded["scalars"].items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    # saved tensors are contiguous; give each buffer its parameter's memory format (channels-last conv
    # weights), since fused optimizer kernels walk parameter and buffer memory in step
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, values in state.items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.shape == params[index].shape:
                values[name] = torch.empty_like(params[index], dtype=value.dtype).copy_(value)
    optimizer.load_state_dict({"state": state, "param_groups": decoded["param_groups"]})
