"""One run, many runs: `run(config) -> run_dir` validates, then runs or resumes; seeds and grids map it.

A run is a pure function config -> run directory, so an engine such as Ray or submitit can map `run`
over the same list of configs on a cluster; `run_many` is the local, sequential path.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from sddlab import paths
from sddlab.antidotes import teacher_config
from sddlab.collect import index
from sddlab.config import Config
from sddlab.divergence import Diverged, SeedsDiverged
from sddlab.errors import ConfigError
from sddlab.events import Event, LevelFinished, Listener, RunFinished
from sddlab.experiment import Experiment, replay_stored
from sddlab.integrity import check_run
from sddlab.lockstep.group import LockstepGroup, SeedListener, check_lockstep
from sddlab.lockstep.stacked import LOCKSTEP_MODELS, supports_lockstep
from sddlab.paths import check_writable
from sddlab.preparation import Setup, prepare
from sddlab.progress import ProgressBar
from sddlab.provenance import machine, source_commit
from sddlab.runtime import Runtime, cpu_sample, resolve_device, step_flop
from sddlab.store import RunStore
from sddlab.version import __version__


def _fan_out(listeners: list[Listener]) -> Listener:
    def emit(event: Event) -> None:
        for listener in listeners:
            listener(event)

    return emit


def run_dir_of(config: Config, results: str | Path | None = None) -> Path:
    """Where `config` is (or would be) stored; `results` None follows `sddlab.paths.results_dir`."""
    return paths.results_dir(results) / config.run_name()


def is_finished(config: Config, results: str | Path | None = None) -> bool:
    store_dir = run_dir_of(config, results)
    if not (store_dir / "config.json").exists():
        return False
    store = RunStore(store_dir)
    finished = all(store.has_level(level) for level in range(config.experiment.levels + 1))
    return finished and not check_run(store_dir)  # a damaged run goes on to be repaired


def run(
    config: Config,
    results: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    listener: Listener | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_every: float = 60.0,
    runtime: Runtime | None = None,
    epoch_metrics: bool = False,
    step: str = "auto",
) -> Path:
    """Run (or resume, or just return) the experiment of `config`; returns its run directory.

    `results` and `data_dir` None follow `sddlab.paths` (SDDLAB_RESULTS / SDDLAB_DATA, else ./results and
    ./data). Bad input raises a one-line `SddError` before any directory is created. A finished run returns
    at once; an interrupted one resumes at its first unfinished level (and last checkpointed epoch).
    `listener` receives the run's events; `should_stop` is polled every epoch (progress is checkpointed,
    then `StopRequested` is raised); `epoch_metrics` adds test accuracy to every epoch event. `step` "auto"
    trains the MLP family through the hand-written step (`hand_written_step`), "autograd" always through autograd.
    """
    if not isinstance(config, Config):
        raise ConfigError("config", type(config).__name__, "an sddlab.Config (e.g. sddlab.get_preset('digits'))")
    if step not in ("auto", "autograd"):
        raise ConfigError("step", step, "auto (the hand-written step where it applies) or autograd")
    results = paths.results_dir(results)
    check_writable(results)
    runtime = runtime or Runtime(device=resolve_device(device))
    bar = ProgressBar() if progress else None
    emit = _fan_out([one for one in (bar, listener) if one is not None])
    if is_finished(config, results):  # read back without building data or model
        store = RunStore(run_dir_of(config, results))
        replay_stored(store, emit, [0] * (config.experiment.levels + 1))
        emit(RunFinished(store.dir))
        return store.dir
    teacher = teacher_config(config)
    if teacher is not None:  # a sparse teacher is its plain twin's level: that run is finished (or read back) first
        run(teacher, results, data_dir=data_dir, device=device, progress=progress, runtime=runtime)
    since = cpu_sample()  # the machine's load is measured over the set-up, so the thread choice need not pause
    setup = prepare(config, data_dir, runtime)
    threads = runtime.configure_backends(step_flop(setup.model, config.training.batch_size), since)
    if threads is not None:  # re-chosen as the machine's load moves
        emit = _fan_out([emit, threads])
    autograd = step == "autograd" or not hand_written_step(config, runtime)
    store = open_store(setup, results, "autograd" if autograd else "hand-written")
    try:
        with store.lock():  # opening it checked it once: damaged files went to RUN_DIR/damaged/ for recompute
            experiment = Experiment(setup, store, emit, should_stop, checkpoint_every, epoch_metrics)
            if autograd:
                return experiment.run()
            try:  # the MLP family trains through the hand-written step, as one seed of a lockstep group
                return LockstepGroup([experiment], runtime).run()[0]
            except SeedsDiverged as diverged:  # a single run reports its own divergence, as the autograd path
                raise next(iter(diverged.errors.values())) from None
    finally:  # a stop, an error or Ctrl-C: the bar ends its line before anything else is printed
        if bar is not None:
            bar.close()


def hand_written_step(config: Config, runtime: Runtime) -> bool:
    """Whether a single run trains through the lockstep group's hand-written step (K = 1): the MLP family in
    full precision with the plain loss and no early stopping; bf16, distillation, early stopping, torch.compile
    and conv nets keep the autograd loop. Both give equal records (float64 test in tests/test_lockstep.py)."""
    return (config.model.name in LOCKSTEP_MODELS and config.training.precision == "fp32" and not runtime.compile
            and supports_lockstep(config, runtime.device))


def open_store(setup: Setup, results: Path, step: str) -> RunStore:
    """The run directory of a prepared config, created with its meta (versions, commit, machine, the training
    step that started it, noise, sizes)."""
    config, runtime = setup.config, setup.runtime
    params = dict(setup.model.named_parameters())
    meta = {
        "sddlab_version": __version__,
        "torch_version": torch.__version__,
        "device": runtime.device,
        "commit": source_commit(),
        "machine": machine(runtime.device, runtime.threads),
        "step": step,
        "noise": setup.data.noise_summary(),
        "prunable": setup.prunable,
        "prunable_weights": sum(params[name].numel() for name in setup.prunable),
        "ignored_weights": setup.ignored_weights,
        "iterations_per_epoch": setup.per_epoch,
        "rewind_iteration": setup.rewind_point,
    }
    return RunStore.open_or_create(results, config, meta)


def with_seeds(config: Config, seeds: Sequence[int]) -> list[Config]:
    """One config per seed."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not all(
            isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds):
        raise ConfigError("seeds", seeds, "a list of seeds (non-negative integers), e.g. [0, 1, 2]")
    return [config.with_overrides({"experiment.seed": int(seed)}) for seed in seeds]


def grid(config: Config, axes: dict[str, Sequence[Any]]) -> list[Config]:
    """The cartesian product of dotted-field overrides, e.g. {'noise.rate': [0.2, 0.4], 'experiment.seed': [0, 1]}."""
    keys = list(axes)
    return [config.with_overrides(dict(zip(keys, values, strict=True))) for values in itertools.product(*axes.values())]


def run_many(configs: Iterable[Config], results: str | Path | None = None, *, progress: bool = True,
             **run_kwargs: Any) -> pd.DataFrame:
    """Run (or resume, or read back) every config; one tidy table over all of them (see `sddlab.index`)."""
    configs = list(configs)  # each was validated on construction
    run_dirs = []
    for config in tqdm(configs, desc="runs", unit="run", disable=not progress or len(configs) < 2):
        run_dirs.append(run(config, results, progress=progress, **run_kwargs))
    return index(run_dirs)


class _GroupProgress:
    """One progress bar for a group: it follows the first seed still training (the next one when that seed
    diverges) and names the diverged seeds in its postfix."""

    def __init__(self, seeds: list[int]):
        self.bar, self.seeds, self.diverged = ProgressBar(), list(seeds), []

    def __call__(self, seed: int, event: Event) -> None:
        if isinstance(event, LevelFinished) and "diverged" in event.record:
            self.diverged.append(seed)
            self.bar.show("diverged", "seed " + ",".join(map(str, self.diverged)))
            if seed in self.seeds:
                self.seeds.remove(seed)
        elif self.seeds and seed == self.seeds[0]:
            self.bar(event)


def _emitter(seed: int, listener: SeedListener | None, progress: _GroupProgress | None = None,
             threads: Listener | None = None) -> Listener:
    def emit(event: Event) -> None:
        if progress is not None:
            progress(seed, event)
        if listener is not None:
            listener(seed, event)
        if threads is not None:
            threads(event)

    return emit


def run_lockstep(configs: Sequence[Config], results: str | Path | None = None, *, data_dir: str | Path | None = None,
                 device: str = "auto", progress: bool = True, listener: SeedListener | None = None,
                 should_stop: Callable[[], bool] | None = None, checkpoint_every: float = 60.0,
                 runtime: Runtime | None = None, epoch_metrics: bool = False) -> list[Path]:
    """Run (or resume, or read back) configs that differ only in their seed, in lockstep; their run directories.

    Finished seeds are read back; the others are validated and built before any directory is created.
    `listener(seed, event)` gets each seed's events; one progress bar follows the first seed still training.
    Seeds that diverge are recorded and the others finish; then `SeedsDiverged` names them (module docstring).
    """
    check_lockstep(configs)
    results = paths.results_dir(results)
    check_writable(results)
    runtime = runtime or Runtime(device=resolve_device(device))
    pending = []
    for config in configs:
        seed = config.experiment.seed
        if is_finished(config, results):
            store, emit = RunStore(run_dir_of(config, results)), _emitter(seed, listener)
            replay_stored(store, emit, [0] * (config.experiment.levels + 1))
            emit(RunFinished(store.dir))
        else:
            pending.append(config)
    if pending:
        since = cpu_sample()  # the load is measured over the set-up (see `run`)
        setups = [prepare(config, data_dir, runtime) for config in pending]
        threads = runtime.configure_backends(len(setups) * step_flop(setups[0].model, pending[0].training.batch_size),
                                             since)  # re-chosen at the events, as the load moves
        first = pending[0]
        hand_written = first.training.precision == "fp32" and first.model.name in LOCKSTEP_MODELS
        step = "lockstep " + ("hand-written" if hand_written else "autograd")
        stores = sorted(((open_store(setup, results, step), setup) for setup in setups),
                        key=lambda pair: pair[0].dir.name)
        seeds = [setup.config.experiment.seed for _, setup in stores]
        bar = _GroupProgress(seeds) if progress else None
        with contextlib.ExitStack() as held:
            for store, _ in stores:  # one writer per run directory; a fixed order, so groups never deadlock
                held.enter_context(store.lock())
            if bar is not None:  # a stop, an error or Ctrl-C: the bar ends its line before anything is printed
                held.callback(bar.bar.close)
            experiments = [Experiment(setup, store, _emitter(seed, listener, bar, threads), should_stop,
                                      checkpoint_every, epoch_metrics)
                           for (store, setup), seed in zip(stores, seeds, strict=True)]
            LockstepGroup(experiments, setups[0].runtime).run()
    return [run_dir_of(config, results) for config in configs]


def run_seeds(config: Config, seeds: Sequence[int], results: str | Path | None = None, *, lockstep: bool = True,
              listener: SeedListener | None = None, **run_kwargs: Any) -> list[Path]:
    """K seeds of `config`: in lockstep when the model allows it (and `lockstep`), else one run after another.

    `listener(seed, event)` receives every seed's events (the explorer's seeds control draws its band from them).
    Either way a seed that diverges does not stop the others: `SeedsDiverged` names it once all have run.
    """
    configs = with_seeds(config, seeds)
    if lockstep and supports_lockstep(config) and len(configs) > 1:
        return run_lockstep(configs, results, listener=listener, **run_kwargs)
    diverged: dict[int, Diverged] = {}
    for c in configs:
        try:
            run(c, results, listener=None if listener is None else _emitter(c.experiment.seed, listener), **run_kwargs)
        except Diverged as error:
            diverged[c.experiment.seed] = error
    if diverged and len(configs) > 1:
        raise SeedsDiverged(diverged, len(configs))
    if diverged:
        raise next(iter(diverged.values()))
    return [run_dir_of(c, results) for c in configs]
