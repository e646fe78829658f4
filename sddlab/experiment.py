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
from sddlab.antidotes import EarlyStopped, EntropyStop, LossFn, distillation_for
from sddlab.divergence import Diverged, diverged_record, stop_if_diverged
from sddlab.epoch_end import Checkpoints, RunEpochEnd
from sddlab.events import LevelFinished, LevelStarted, Listener, RunFinished, RunStarted
from sddlab.metrics import example_labels, learning_distance, measure_with_predictions
from sddlab.models import build_model
from sddlab.preparation import Setup, level_span
from sddlab.resume import restore_partial, save_partial
from sddlab.seeds import stream_seed, torch_stream
from sddlab.store import RunStore, partial_checkpoint
from sddlab.training import EpochStats, Span, make_optimizer, train

Weights = dict[str, torch.Tensor]


def replay_stored(store: RunStore, listener: Listener, epochs_per_level: list[int]) -> int:
    """Announce a run and the levels its store already holds; returns how many are finished."""
    records = store.records()
    listener(RunStarted(store.dir, len(epochs_per_level), len(records), epochs_per_level))
    for record in records:
        listener(LevelFinished(record, cached=True))
    return len(records)


@dataclass
class LevelStart:
    """A level pruned and reset, ready to train: what `Experiment.finish_level` needs to record it."""

    level: int
    mask: pruning.Mask
    start_state: Weights
    span: Span
    init: Weights
    rewind: Weights
    began: float
    iterations: int | None = None  # iterations trained, when early stopping ended the span before its end


class Experiment:
    """Runs the levels of one config into its run directory; every finished level is kept."""

    def __init__(self, setup: Setup, store: RunStore, listener: Listener | None = None,
                 should_stop: Callable[[], bool] | None = None, checkpoint_every: float = 60.0,
                 epoch_metrics: bool = False):
        self.setup, self.store = setup, store
        self.config = setup.config
        self.model = setup.model
        self.listener = listener or (lambda event: None)
        self.should_stop = should_stop
        self.checkpoint_every = checkpoint_every
        self.epoch_metrics = epoch_metrics
        self.seed = self.config.experiment.seed
        self.device = setup.runtime.device
        self._last: tuple[int, pruning.Mask, Weights] | None = None  # the latest level computed here

    # -- weights ----------------------------------------------------------------------------------
    def _state(self) -> Weights:
        return {name: t.detach().clone() for name, t in self.model.state_dict().items()}

    def _init_state(self) -> Weights:
        """The original dense initialisation: the freshly built model, or the stored one on resume."""
        if self.store.has_checkpoint("init"):
            return self.store.load_checkpoint("init", self.device)
        init = self._state()
        self.store.save_checkpoint("init", init)
        return init

    def _rewind_state(self, init: Weights) -> Weights:
        """The dense weights at the rewind iteration t (the init itself when t = 0)."""
        t = self.setup.rewind_point
        if t == 0:
            return init
        if self.store.has_checkpoint("rewind"):
            return self.store.load_checkpoint("rewind", self.device)
        self.model.load_state_dict(init)
        pretrain = dataclasses.replace(level_span(self.setup, 0, "pretrain"), start=0, end=t)
        self._train_span(-1, pruning.dense_mask(self.model, self.setup.prunable), pretrain)
        rewind = self._state()
        self.store.save_checkpoint("rewind", rewind)
        return rewind

    def _state_after(self, level: int) -> tuple[pruning.Mask, Weights]:
        """(mask, final weights) of a finished level: from memory when it was just computed, else the store."""
        if self._last is not None and self._last[0] == level:
            return self._last[1], self._last[2]
        return self.store.load_level_state(level, self.device)

    # -- one span of training, resumable at epoch boundaries --------------------------------------
    def _train_span(self, level: int, mask: pruning.Mask, span: Span) -> int | None:
        """Train `span` with a fresh optimizer, or continue from its partial checkpoint.

        Returns the iterations trained when entropy early stopping ended the span early, else None."""
        optimizer = make_optimizer(self.model, span.training)
        partial, began_at = partial_checkpoint(span.stream), span.start
        stopper = EntropyStop(span.training) if span.training.early_stop == "entropy" else None
        if self.store.has_checkpoint(partial):
            span = span.resumed_at(restore_partial(self.store, partial, self.model, optimizer, self.device))
            if stopper is not None:
                stopper.history = json.loads(self.store.checkpoint_metadata(partial).get("notes", "[]"))
        run_end = self.epoch_end(level, stopper)

        def save(iteration: int) -> None:
            notes = None if stopper is None else json.dumps(stopper.history)
            save_partial(self.store, partial, self.model, optimizer, iteration, notes)

        checkpoints = Checkpoints(self.should_stop, self.checkpoint_every, save)

        def at_epoch_end(stats: EpochStats) -> None:
            checkpoints(run_end(stats))

        try:
            train(self.model, mask, self.setup.data, span, optimizer, self.setup.runtime, at_epoch_end,
                  track=self.epoch_metrics, loss_fn=self._loss(level))
        except EarlyStopped as stopped:
            return stopped.iteration - began_at
        return None

    def epoch_end(self, level: int, stopper: EntropyStop | None = None) -> RunEpochEnd:
        """This run's part of the epoch-end policy (`sddlab.epoch_end`) for a span of `level`."""
        return RunEpochEnd(level, self.model, self.setup, self.listener, self.epoch_metrics, stopper)

    def _loss(self, level: int) -> LossFn | None:
        """Distillation (`training.distill_*`): from this run's trained dense network, or a sparse teacher."""
        return distillation_for(self.config, self.model, level, lambda: self._state_after(0)[1], self.store.dir.parent)

    # -- the levels -------------------------------------------------------------------------------
    def _next_mask(self, level: int, mask: pruning.Mask, previous: Weights) -> pruning.Mask:
        """Iterative: prune `fraction` of what the previous level kept, scored on its final weights.
        One-shot: prune the dense level's final weights straight to sparsity 1 - (1 - fraction)^level."""
        cfg = self.config.pruning
        fraction = cfg.fraction
        self.model.load_state_dict(previous)
        if cfg.strategy == "oneshot":
            self.model.load_state_dict(self._state_after(0)[1])
            mask = pruning.dense_mask(self.model, self.setup.prunable)
            fraction = 1.0 - (1.0 - cfg.fraction) ** level
        if cfg.score == "magnitude":
            scores = pruning.magnitude_scores(self.model, mask)
        elif cfg.score == "random":
            scores = pruning.random_scores(mask, torch_stream(self.seed, "prune-random", level))
        else:
            scores = pruning.gradient_scores(self.model, mask, self._gradient_batch_loss(level))
        return pruning.prune_mask(scores, mask, fraction, cfg.scope, self.setup.ignored_weights, cfg.count)

    def _augmentation(self, *stream: object) -> torch.Generator | None:
        """A seeded augmentation stream when measurements use augmented images (experiment.measure_on)."""
        if self.config.experiment.measure_on != "augmented":
            return None
        generator = torch.Generator(device=self.setup.data.device)
        return generator.manual_seed(stream_seed(self.seed, *stream))

    def _gradient_batch_loss(self, level: int) -> Callable[[nn.Module], torch.Tensor]:
        """The loss on one seeded batch of training examples that gradient scores are taken on
        (augmented like a training batch when experiment.measure_on is augmented, as the paper's code)."""
        data = self.setup.data
        generator = torch_stream(self.seed, "prune-gradient", level)
        index = torch.randperm(data.num_train, generator=generator)[: self.config.training.batch_size]
        index = index.to(data.device)
        augment = self._augmentation("prune-gradient-augment", level)

        def loss_fn(model: nn.Module) -> torch.Tensor:
            batch = data.x_train[index]
            inputs = data.spec.eval_transform(batch) if augment is None else data.spec.train_transform(batch, augment)
            return nn.functional.cross_entropy(model(inputs), data.y_train[index])

        return loss_fn

    def _start_state(self, level: int, init: Weights, rewind: Weights, previous: Weights | None) -> Weights:
        mode = self.config.retraining.mode
        if mode == "scratch":
            if level == 0:
                return init
            seed = stream_seed(self.seed, "scratch-init", level)
            data = self.setup.data
            fresh = build_model(self.config.model, data.spec.input_shape, data.num_classes, seed)
            return {k: v.to(self.device) for k, v in fresh.state_dict().items()}
        if level == 0 or mode == "rewind":
            return rewind
        return previous  # finetune and lr-rewind continue from the previous level's weights

    def run(self) -> Path:
        init, rewind = self.begin()
        for level in range(self.config.experiment.levels + 1):
            if not self.store.has_level(level):
                self._run_level(level, init, rewind)
        return self.end()

    def begin(self) -> tuple[Weights, Weights]:
        """Announce the run and its stored levels; returns the original init and the rewind-point weights."""
        levels = self.config.experiment.levels + 1
        replay_stored(self.store, self.listener, [level_span(self.setup, lv).epochs for lv in range(levels)])
        stop_if_diverged(self.store.records())
        if not self.store.has_examples():
            self.store.save_examples(example_labels(self.setup.data))
        init = self._init_state()
        return init, self._rewind_state(init)

    def end(self) -> Path:
        self.store.remove_checkpoint(partial_checkpoint("pretrain"))
        self.store.update_meta(finished=True)
        self.listener(RunFinished(self.store.dir))
        return self.store.dir

    def _run_level(self, level: int, init: Weights, rewind: Weights) -> None:
        """Prune, reset, train and measure one level, then store it (the record last)."""
        start = self.start_level(level, init, rewind)
        try:
            start.iterations = self._train_span(level, start.mask, start.span)
        except Diverged as error:  # recorded with its reason (no checkpoint), then the run stops
            self.record_diverged(start, error)
            raise
        self.finish_level(start)

    def record_diverged(self, start: LevelStart, error: Diverged) -> None:
        """Store a diverged level: its sparsity and reason, no measurements and no checkpoint (lockstep
        groups call this for a seed that diverged, then go on without it)."""
        record = diverged_record(start.level, start.mask, self.setup.ignored_weights, error)
        self.store.save_level(start.level, record)
        self.store.remove_checkpoint(partial_checkpoint(start.span.stream))
        self.listener(LevelFinished(record))

    def start_level(self, level: int, init: Weights, rewind: Weights) -> LevelStart:
        """Prune and reset: the level's mask, start weights (in the model unless a partial checkpoint waits)
        and span. Lockstep seeds call this, train together, then call `finish_level`."""
        began = time.perf_counter()
        mask, previous = pruning.dense_mask(self.model, self.setup.prunable), None
        if level > 0:
            mask, previous = self._state_after(level - 1)
            mask = self._next_mask(level, mask, previous)
        self.listener(LevelStarted(level, pruning.sparsity(mask), pruning.remaining(mask)))
        start_state = self._start_state(level, init, rewind, previous)
        span = level_span(self.setup, level)
        if not self.store.has_checkpoint(partial_checkpoint(span.stream)):
            self.model.load_state_dict(start_state)
        return LevelStart(level, mask, start_state, span, init, rewind, began)

    def finish_level(self, start: LevelStart) -> None:
        """Measure the trained model and store the level: checkpoint first, the record last."""
        level, mask, span = start.level, start.mask, start.span
        final = self._state()
        record, predictions = self._record(level, mask, start.init, start.rewind, start.start_state,
                                           start.iterations if start.iterations is not None else span.end - span.start)
        record["seconds"] = round(time.perf_counter() - start.began, 3)
        self.store.save_level_state(level, mask, final)
        self.store.save_predictions(level, predictions)
        self.store.save_level(level, record)
        self.store.remove_checkpoint(partial_checkpoint(span.stream))
        self._last = (level, mask, final)
        self.listener(LevelFinished(record))

    def _record(self, level: int, mask: pruning.Mask, init: Weights, rewind: Weights, start: Weights,
                iterations: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        params = dict(self.model.named_parameters())
        weights = {name: params[name].detach() for name in mask}
        measured, predictions = measure_with_predictions(self.model, self.setup.data, self.setup.runtime,
                                                         self._augmentation("measure", level))
        return {
            "level": level,
            **pruning.sparsity_fields(mask, self.setup.ignored_weights),
            **measured,
            "learning_distance": learning_distance(init, weights, mask, from_pruned_as_zero=True),
            "learning_distance_rewind": learning_distance(rewind, weights, mask, from_pruned_as_zero=False),
            "learning_distance_start": learning_distance(start, weights, mask, from_pruned_as_zero=False),
            "iterations": iterations,
            "seconds": 0.0,
        }, predictions
