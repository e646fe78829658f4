"""Where the points of a sweep run: in this process, a local process pool, Ray, or SLURM through submitit.

A task is a pure function of JSON configs -> run directories (`run_task`), so every engine maps the same
function; none is home-made. Engines are optional extras; one that fails to import (missing, or broken
in any other way) is a one-line `SddError` naming the extra and the reason, and `slurm` without SLURM is
refused unless the sweep asks for submitit's local executor: nothing falls back silently.
A task that fails (a worker killed, an exception) is reported with its reason; its run directory stays
resumable, and the next sweep finishes only what is not done.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sddlab.config import Config
from sddlab.errors import SddError
from sddlab.figures.export import write_run_figure
from sddlab.runs import run, run_lockstep

EXECUTORS = ("inprocess", "process", "ray", "slurm")
EXTRAS = {"ray": "ray", "submitit": "slurm"}
CLUSTERS = (None, "slurm", "local", "debug")  # submitit's; None means SLURM here (no silent local fallback)


@dataclass(frozen=True)
class Task:
    """Configs (as JSON) run by one worker: one run, or a lockstep group of seeds of one grid point."""

    configs: tuple[str, ...]
    lockstep: bool = False

    @classmethod
    def of(cls, configs: Sequence[Config], lockstep: bool) -> Task:
        return cls(tuple(config.to_json() for config in configs), lockstep and len(configs) > 1)

    def names(self) -> list[str]:
        return [Config.from_json(text).run_name() for text in self.configs]


@dataclass(frozen=True)
class Where:
    """What every task needs besides its configs: folders, device, and intra-op threads (None: keep)."""

    results: str
    data_dir: str | None = None
    device: str = "auto"
    threads: int | None = None


@dataclass
class Outcome:
    task: Task
    run_dirs: list[str] = field(default_factory=list)
    error: str | None = None  # one line: why the task failed


Done = Callable[[Outcome], None] | None  # told of each task as it ends


def _tell(done: Done, outcome: Outcome) -> None:
    if done is not None:
        done(outcome)


def run_task(task: Task, where: Where) -> list[str]:
    """Run (or resume, or read back) a task's configs; their run directories. Runs in any worker."""
    if where.threads:
        torch.set_num_threads(where.threads)
    configs = [Config.from_json(text) for text in task.configs]
    common: dict[str, Any] = {"data_dir": where.data_dir, "device": where.device, "progress": False}
    if task.lockstep:
        run_dirs = list(run_lockstep(configs, where.results, **common))
    else:
        run_dirs = [run(config, where.results, **common) for config in configs]
    for run_dir in run_dirs:  # each point's figure.html, as the command line writes it
        write_run_figure(run_dir)
    return [str(path) for path in run_dirs]


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}".strip()


def engine(module: str) -> Any:
    """Import an optional engine, or fail with one line naming the extra that installs it and why it failed."""
    extra = EXTRAS[module]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:  # the engine is there but something it needs is not
            raise SddError(f"executor={extra!r} needs {module}, which failed to import ({_reason(error)}): "
                           f"pip install 'sddlab[{extra}]' again") from None
        raise SddError(f"executor={extra!r} needs {module}, which is not installed: pip install 'sddlab[{extra}]'") \
            from None
    except Exception as error:  # a broken install raises anything: name it rather than show a traceback
        raise SddError(f"executor={extra!r} needs {module}, which failed to import ({_reason(error)}): "
                       f"pip install 'sddlab[{extra}]' again") from None


def preflight(kind: str, options: dict[str, Any], results: Path) -> None:
    """Before anything starts: the engine imports, `slurm` finds SLURM (`sbatch` on PATH) unless the sweep
    asks for submitit's `local` or `debug` cluster, and submitit's folder lies inside the results folder."""
    if kind == "ray":
        engine("ray")
    if kind != "slurm":
        return
    engine("submitit")
    cluster = options.get("cluster")
    if cluster not in CLUSTERS:
        raise SddError(f"executor.slurm.cluster={cluster!r} is not allowed: slurm (the default), local or debug")
    if cluster in (None, "slurm") and shutil.which("sbatch") is None:
        raise SddError("executor='slurm' needs SLURM, but `sbatch` is not on PATH: run the sweep on a SLURM login "
                       "node, or run its jobs on this machine with cluster = \"local\" under [executor.slurm] in "
                       "the sweep file")
    folder = Path(results) / str(options.get("folder", ".submitit"))
    if not os.path.normpath(folder.absolute()).startswith(os.path.normpath(Path(results).absolute()) + os.sep):
        raise SddError(f"executor.slurm.folder={options['folder']!r} is not allowed: a folder inside the results "
                       f"folder {results} (relative to it), where the jobs' logs go")


def in_process(tasks: Sequence[Task], where: Where, options: dict[str, Any], done: Done = None) -> list[Outcome]:
    """One task after another in this process (lockstep groups are the lever here)."""
    outcomes = []
    for task in tasks:
        try:
            outcomes.append(Outcome(task, run_task(task, where)))
        except Exception as error:  # reported, not raised: the other points still run
            outcomes.append(Outcome(task, error=_reason(error)))
        _tell(done, outcomes[-1])
    return outcomes


def _start_worker(threads: int) -> None:
    """A pool worker: its share of the cores, and deaf to Ctrl-C (the parent stops the pool: one message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def process_pool(tasks: Sequence[Task], where: Where, options: dict[str, Any], done: Done = None) -> list[Outcome]:
    """A local pool of `workers` spawned processes, each with `threads` intra-op threads (default: the
    cores divided among the workers, so they never oversubscribe the CPU)."""
    workers = int(options.get("workers") or os.cpu_count() or 1)
    threads = int(options.get("threads") or max(1, (os.cpu_count() or 1) // workers))
    context = multiprocessing.get_context("spawn")
    outcomes = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(run_task, task, where): task for task in tasks}
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    outcomes[task] = Outcome(task, future.result())
                except Exception as error:  # BrokenProcessPool when a worker died
                    outcomes[task] = Outcome(task, error=_reason(error))
                _tell(done, outcomes[task])
        except KeyboardInterrupt:  # stop the workers now; their runs resume from their checkpoints next time
            for worker in list((getattr(pool, "_processes", None) or {}).values()):
                worker.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return [outcomes[task] for task in tasks]


def ray_cluster(tasks: Sequence[Task], where: Where, options: dict[str, Any], done: Done = None) -> list[Outcome]:
    """Ray tasks: a local cluster started here (and shut down after), or an existing one by `address`.

    `num_cpus` (also the task's threads) and `num_gpus` (fractional allowed) per task; `max_retries`
    (default 0: a dead worker is reported and the next sweep resumes it).
    """
    ray = engine("ray")
    started = not ray.is_initialized()
    if started:
        init = {"address": options["address"]} if options.get("address") else {
            "num_cpus": options.get("cluster_cpus") or os.cpu_count(), "include_dashboard": False,
            "object_store_memory": int(options.get("object_store_mb", 128)) * 2**20}
        ray.init(log_to_driver=False, **init)
    num_cpus = float(options.get("num_cpus", 1))
    remote = ray.remote(num_cpus=num_cpus, num_gpus=float(options.get("num_gpus", 0)),
                        max_retries=int(options.get("max_retries", 0)))(run_task)
    threaded = Where(where.results, where.data_dir, where.device, max(1, int(num_cpus)))
    refs = [(task, remote.remote(task, threaded)) for task in tasks]
    outcomes = []
    try:
        for task, ref in refs:
            try:
                outcomes.append(Outcome(task, ray.get(ref)))
            except Exception as error:  # RayTaskError, WorkerCrashedError, ...
                outcomes.append(Outcome(task, error=_reason(error)))
            _tell(done, outcomes[-1])
    finally:
        if started:
            ray.shutdown()
    return outcomes


def slurm(tasks: Sequence[Task], where: Where, options: dict[str, Any], done: Done = None) -> list[Outcome]:
    """submitit jobs (one array): `cluster` slurm (the default), local or debug; `folder` (their logs) is
    relative to the results folder; other options are submitit's parameters (`slurm_partition`,
    `timeout_min`, `gpus_per_node`, ...)."""
    submitit = engine("submitit")
    params = dict(options)
    folder = Path(where.results) / str(params.pop("folder", ".submitit"))
    executor = submitit.AutoExecutor(folder=folder, cluster=params.pop("cluster", None) or "slurm")
    params.setdefault("timeout_min", 24 * 60)
    executor.update_parameters(**params)
    threaded = Where(where.results, where.data_dir, where.device, int(params.get("cpus_per_task", 1)))
    with executor.batch():
        jobs = [executor.submit(run_task, task, threaded) for task in tasks]
    outcomes = []
    for task, job in zip(tasks, jobs, strict=True):
        try:
            outcomes.append(Outcome(task, job.result()))
        except Exception as error:  # FailedJobError, UncompletedJobError (a killed job)
            outcomes.append(Outcome(task, error=_reason(error)))
        _tell(done, outcomes[-1])
    return outcomes


MAPPERS: dict[str, Callable[[Sequence[Task], Where, dict[str, Any], Done], list[Outcome]]] = {
    "inprocess": in_process, "process": process_pool, "ray": ray_cluster, "slurm": slurm,
}


def execute(kind: str, tasks: Sequence[Task], where: Where, options: dict[str, Any] | None = None,
            done: Done = None) -> list[Outcome]:
    """Run the tasks on the executor `kind`; one outcome per task, in order. `done(outcome)` is called in
    this process as each task ends (in the order they end), e.g. to move a progress bar."""
    if kind not in MAPPERS:
        raise SddError(f"executor={kind!r} is not allowed: one of {', '.join(EXECUTORS)}")
    preflight(kind, dict(options or {}), Path(where.results))
    return MAPPERS[kind](list(tasks), where, dict(options or {}), done) if tasks else []
