"""Seeds of one config trained in lockstep: K ordinary run directories, one stacked model on one device.

Each seed keeps its own `Experiment` (init, noise draw, data order, masks, records, store and lock);
only the training spans of a level run together. Pretraining to a rewind point t > 0 runs per seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from sddlab import paths
from sddlab.app.progress import ProgressBar
from sddlab.config import Config
from sddlab.errors import ConfigError
from sddlab.events import EpochEnded, Event, Listener, RunFinished
from sddlab.experiment import Experiment, LevelStart, StopRequested, replay_stored
from sddlab.lockstep.loop import train_stacked
from sddlab.lockstep.stacked import (
    LOCKSTEP_MODELS,
    StackedMLP,
    slice_optimizer_state,
    stack_optimizer_states,
    supports_lockstep,
)
from sddlab.metrics import evaluate
from sddlab.preparation import prepare
from sddlab.resume import restore_partial, save_partial
from sddlab.runs import is_finished, open_store, run, run_dir_of, with_seeds
from sddlab.runtime import Runtime, resolve_device
from sddlab.store import RunStore, check_writable
from sddlab.training import EpochStats, make_optimizer

SeedListener = Callable[[int, Event], None]  # (seed, event): the explorer's per-seed curves and bands
Member = tuple[Experiment, LevelStart, "torch.optim.Optimizer | None"]


def check_lockstep(configs: Sequence[Config]) -> None:
    """One-line errors before any work: same config up to the seed, distinct seeds, an MLP-family model."""
    if not configs:
        raise ConfigError("seeds", "[]", "at least one seed")
    base = configs[0].with_overrides({"experiment.seed": 0}).short_hash()
    for config in configs:
        if config.model.name not in LOCKSTEP_MODELS:
            raise ConfigError("model.name", config.model.name, "mlp or lenet-300-100 for lockstep seeds")
        if not supports_lockstep(config):
            raise ConfigError("lockstep", config.name, "no distillation and no early stopping (run seeds apart)")
        if config.with_overrides({"experiment.seed": 0}).short_hash() != base:
            raise ConfigError("lockstep", config.name, "configs that differ in experiment.seed only")
    seeds = [config.experiment.seed for config in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("experiment.seed", str(seeds), "distinct seeds")


class LockstepGroup:
    """Runs the levels of K seeds' experiments; the seeds that still need a level train it together."""

    def __init__(self, experiments: list[Experiment], runtime: Runtime):
        self.experiments, self.runtime = experiments, runtime

    def run(self) -> list[Path]:
        starts = [experiment.begin() for experiment in self.experiments]
        levels = self.experiments[0].config.experiment.levels + 1
        for level in range(levels):
            active = [k for k, e in enumerate(self.experiments) if not e.store.has_level(level)]
            if not active:
                continue
            begun = [(self.experiments[k], self.experiments[k].start_level(level, *starts[k])) for k in active]
            self._train_level(level, begun)
            for experiment, start in begun:
                experiment.finish_level(start)
        return [experiment.end() for experiment in self.experiments]

    def _train_level(self, level: int, begun: list[tuple[Experiment, LevelStart]]) -> None:
        """Resume each seed from its partial checkpoint, then train together the seeds at the same iteration."""
        groups: dict[int, list[Member]] = {}
        for experiment, start in begun:
            name, at, optimizer = f"partial-{start.span.stream}", start.span.start, None
            if experiment.store.has_checkpoint(name):
                optimizer = make_optimizer(experiment.model, start.span.training)
                at = restore_partial(experiment.store, name, experiment.model, optimizer, experiment.device)
            groups.setdefault(at, []).append((experiment, start, optimizer))
        for at, members in sorted(groups.items()):
            self._train_together(level, members, at)

    def _train_together(self, level: int, members: list[Member], at: int) -> None:
        training = members[0][1].span.training
        stacked = StackedMLP([experiment.model for experiment, _, _ in members])
        optimizer = make_optimizer(stacked, training)
        if at > members[0][1].span.start:
            optimizer.load_state_dict(stack_optimizer_states([opt.state_dict() for _, _, opt in members]))
        dtype = stacked.stack[0].dtype
        masks = {name: torch.stack([start.mask[name] for _, start, _ in members]).to(stacked.stack[0].device, dtype)
                 for name in members[0][1].mask}
        spans = [start.span.resumed_at(at) for _, start, _ in members]
        hook = _EpochEnd(level, members, stacked, optimizer, self.runtime)
        train_stacked(stacked, masks, [e.setup.data for e, _, _ in members], spans, optimizer, self.runtime,
                      hook, track=members[0][0].epoch_metrics)
        for k, (experiment, _, _) in enumerate(members):
            stacked.copy_into(k, experiment.model)


class _EpochEnd:
    """Per-seed epoch events, partial checkpoints every `checkpoint_every` seconds, and stop requests."""

    def __init__(self, level: int, members: list[Member], stacked: StackedMLP, optimizer: torch.optim.Optimizer,
                 runtime: Runtime):
        self.level, self.members, self.stacked = level, members, stacked
        self.optimizer, self.runtime = optimizer, runtime
        self.lead = members[0][0]
        self.last_checkpoint = time.monotonic()

    def __call__(self, stats: list[EpochStats]) -> None:
        for k, (experiment, _, _) in enumerate(self.members):
            seed_stats = stats[k]
            if experiment.epoch_metrics:
                self.stacked.copy_into(k, experiment.model)
                data = experiment.setup.data
                test = evaluate(experiment.model, data.x_test, data.y_test, transform=data.spec.eval_transform,
                                runtime=self.runtime)
                seed_stats = dataclasses.replace(seed_stats, test_acc=test.acc)
            experiment.listener(EpochEnded(self.level, seed_stats))
        stop = self.lead.should_stop is not None and self.lead.should_stop()
        if stats[0].finished:
            return
        if stop or time.monotonic() - self.last_checkpoint > self.lead.checkpoint_every:
            self._checkpoint(stats[0].iteration)
        if stop:
            raise StopRequested(f"stopped at iteration {stats[0].iteration}")

    def _checkpoint(self, iteration: int) -> None:
        """Each seed's model and optimizer state, as an ordinary run's partial checkpoint."""
        state = self.optimizer.state_dict()
        for k, (experiment, start, _) in enumerate(self.members):
            self.stacked.copy_into(k, experiment.model)
            seed_optimizer = make_optimizer(experiment.model, start.span.training)
            seed_optimizer.load_state_dict(slice_optimizer_state(state, k))
            save_partial(experiment.store, f"partial-{start.span.stream}", experiment.model, seed_optimizer, iteration)
        self.last_checkpoint = time.monotonic()


def _emitter(seed: int, listener: SeedListener | None, progress: bool) -> Listener:
    bar = ProgressBar() if progress else None

    def emit(event: Event) -> None:
        if bar is not None:
            bar(event)
        if listener is not None:
            listener(seed, event)

    return emit


def run_lockstep(configs: Sequence[Config], results: str | Path | None = None, *, data_dir: str | Path | None = None,
                 device: str = "auto", progress: bool = True, listener: SeedListener | None = None,
                 should_stop: Callable[[], bool] | None = None, checkpoint_every: float = 60.0,
                 runtime: Runtime | None = None, epoch_metrics: bool = False) -> list[Path]:
    """Run (or resume, or read back) configs that differ only in their seed, in lockstep; their run directories.

    Finished seeds are read back; the others are validated and built before any directory is created.
    `listener(seed, event)` gets each seed's events; one progress bar follows the first seed to train.
    """
    check_lockstep(configs)
    results = paths.results_dir(results)
    check_writable(results)
    runtime = runtime or Runtime(device=resolve_device(device))
    pending = []
    for config in configs:
        seed = config.experiment.seed
        if is_finished(config, results):
            store, emit = RunStore(run_dir_of(config, results)), _emitter(seed, listener, False)
            replay_stored(store, emit, [0] * (config.experiment.levels + 1))
            emit(RunFinished(store.dir))
        else:
            pending.append(config)
    if pending:
        runtime.configure_backends()
        setups = [prepare(config, data_dir, runtime) for config in pending]
        stores = sorted(((open_store(setup, results), setup) for setup in setups), key=lambda pair: pair[0].dir.name)
        with contextlib.ExitStack() as held:
            for store, _ in stores:  # one writer per run directory; a fixed order, so groups never deadlock
                held.enter_context(store.lock())
            emitters = [_emitter(setup.config.experiment.seed, listener, progress and i == 0)
                        for i, (_, setup) in enumerate(stores)]
            experiments = [Experiment(setup, store, emit, should_stop, checkpoint_every, epoch_metrics)
                           for (store, setup), emit in zip(stores, emitters, strict=True)]
            LockstepGroup(experiments, setups[0].runtime).run()
    return [run_dir_of(config, results) for config in configs]


def run_seeds(config: Config, seeds: Sequence[int], results: str | Path | None = None, *, lockstep: bool = True,
              listener: SeedListener | None = None, **run_kwargs: Any) -> list[Path]:
    """K seeds of `config`: in lockstep when the model allows it (and `lockstep`), else one run after another.

    `listener(seed, event)` receives every seed's events (the explorer's seeds control draws its band from them).
    """
    configs = with_seeds(config, seeds)
    if lockstep and supports_lockstep(config) and len(configs) > 1:
        return run_lockstep(configs, results, listener=listener, **run_kwargs)
    return [run(c, results, listener=None if listener is None else _emitter(c.experiment.seed, listener, False),
                **run_kwargs) for c in configs]
