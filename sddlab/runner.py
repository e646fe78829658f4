"""`run(config) -> run_dir`: validate everything, then run or resume the experiment in its directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from sddlab import __version__
from sddlab.config import Config
from sddlab.errors import ConfigError
from sddlab.events import Event, LevelFinished, Listener, RunFinished, RunStarted
from sddlab.experiment import Experiment, plan, resolve_device
from sddlab.progress import ProgressBar
from sddlab.store import RunStore, check_writable
from sddlab.training import Runtime


def _fan_out(listeners: list[Listener]) -> Listener:
    def emit(event: Event) -> None:
        for listener in listeners:
            listener(event)

    return emit


def run_dir_of(config: Config, results: str | Path = "results") -> Path:
    """Where `config` is (or would be) stored."""
    return Path(results) / config.run_name()


def is_finished(config: Config, results: str | Path = "results") -> bool:
    store_dir = run_dir_of(config, results)
    if not (store_dir / "config.json").exists():
        return False
    store = RunStore(store_dir)
    return all(store.has_level(level) for level in range(config.experiment.levels + 1))


def run(
    config: Config,
    results: str | Path = "results",
    *,
    data_dir: str | Path = "data",
    device: str = "auto",
    progress: bool = True,
    listener: Listener | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_every: float = 60.0,
    runtime: Runtime | None = None,
    epoch_metrics: bool = False,
) -> Path:
    """Run (or resume, or just return) the experiment of `config`; returns its run directory.

    Bad input raises a one-line `SddError` before any directory is created. A finished run returns
    at once; an interrupted one resumes at its first unfinished level (and last checkpointed epoch).
    `listener` receives the run's events; `should_stop` is polled every epoch (progress is checkpointed,
    then `StopRequested` is raised); `epoch_metrics` adds test accuracy to every epoch event.
    """
    if not isinstance(config, Config):
        raise ConfigError("config", type(config).__name__, "an sddlab.Config (e.g. sddlab.get_preset('digits'))")
    results = Path(results)
    check_writable(results)
    runtime = runtime or Runtime(device=resolve_device(device))
    listeners = [ProgressBar()] if progress else []
    if listener is not None:
        listeners.append(listener)
    emit = _fan_out(listeners)
    if is_finished(config, results):
        store = RunStore(run_dir_of(config, results))
        records = store.records()
        emit(RunStarted(store.dir, len(records), len(records)))
        for record in records:
            emit(LevelFinished(record, cached=True))
        emit(RunFinished(store.dir))
        return store.dir
    runtime.configure_backends()
    prepared = plan(config, data_dir, runtime)
    meta = {
        "sddlab_version": __version__,
        "torch_version": torch.__version__,
        "device": runtime.device,
        "noise": prepared.data.noise_summary(),
        "prunable": prepared.prunable,
        "prunable_weights": sum(dict(prepared.model.named_parameters())[n].numel() for n in prepared.prunable),
        "ignored_weights": prepared.ignored_weights,
        "iterations_per_epoch": prepared.per_epoch,
        "rewind_iteration": prepared.rewind_point,
    }
    store = RunStore.open_or_create(results, config, meta)
    with store.lock():
        experiment = Experiment(prepared, store, emit, should_stop, checkpoint_every, epoch_metrics)
        return experiment.run()
