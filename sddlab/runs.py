"""One run, many runs: `run(config) -> run_dir` validates, then runs or resumes; seeds and grids map it.

A run is a pure function config -> run directory, so an engine such as Ray or submitit can map `run`
over the same list of configs on a cluster; `run_many` is the local, sequential path.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from sddlab import paths
from sddlab.app.progress import ProgressBar
from sddlab.collect import index
from sddlab.config import Config
from sddlab.errors import ConfigError
from sddlab.events import Event, Listener, RunFinished
from sddlab.experiment import Experiment, replay_stored
from sddlab.integrity import check_run
from sddlab.preparation import Setup, prepare
from sddlab.runtime import Runtime, resolve_device
from sddlab.store import RunStore, check_writable
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
) -> Path:
    """Run (or resume, or just return) the experiment of `config`; returns its run directory.

    `results` and `data_dir` None follow `sddlab.paths` (SDDLAB_RESULTS / SDDLAB_DATA, else ./results and
    ./data). Bad input raises a one-line `SddError` before any directory is created. A finished run returns
    at once; an interrupted one resumes at its first unfinished level (and last checkpointed epoch).
    `listener` receives the run's events; `should_stop` is polled every epoch (progress is checkpointed,
    then `StopRequested` is raised); `epoch_metrics` adds test accuracy to every epoch event.
    """
    if not isinstance(config, Config):
        raise ConfigError("config", type(config).__name__, "an sddlab.Config (e.g. sddlab.get_preset('digits'))")
    results = paths.results_dir(results)
    check_writable(results)
    runtime = runtime or Runtime(device=resolve_device(device))
    listeners: list[Listener] = [ProgressBar()] if progress else []
    emit = _fan_out(listeners + ([listener] if listener is not None else []))
    if is_finished(config, results):  # read back without building data or model
        store = RunStore(run_dir_of(config, results))
        replay_stored(store, emit, [0] * (config.experiment.levels + 1))
        emit(RunFinished(store.dir))
        return store.dir
    runtime.configure_backends()
    setup = prepare(config, data_dir, runtime)
    store = open_store(setup, results)
    with store.lock():
        store.repair()  # damaged files go to RUN_DIR/damaged/; their levels are recomputed
        return Experiment(setup, store, emit, should_stop, checkpoint_every, epoch_metrics).run()


def open_store(setup: Setup, results: Path) -> RunStore:
    """The run directory of a prepared config, created with its meta (versions, device, noise, sizes)."""
    config, runtime = setup.config, setup.runtime
    params = dict(setup.model.named_parameters())
    meta = {
        "sddlab_version": __version__,
        "torch_version": torch.__version__,
        "device": runtime.device,
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
