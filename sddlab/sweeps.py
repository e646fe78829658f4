"""Sweeps: a grid of config overrides x seeds, each point an ordinary run directory, on any executor.

A sweep file (TOML) and the command line say the same things: a preset (or a JSON config), fixed
overrides, grid axes, seeds and the executor. Finished points are skipped, interrupted ones resume; the
sweep's folder `<results>/sweeps/<name>/` holds `sweep.json` (the points, and which failed and why),
`summary.csv` (mean ± std per level for each group) and `figure.html` (bands over seeds).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from sddlab import paths
from sddlab.assignments import parse_assignment
from sddlab.collect import index
from sddlab.config import Config
from sddlab.errors import ConfigError, SddError
from sddlab.executors import EXECUTORS, Outcome, Task, Where, execute, preflight
from sddlab.io import atomic_write_text, write_html, write_json
from sddlab.limits import check_count, check_model_fits, check_points, check_sweep_name
from sddlab.lockstep import supports_lockstep
from sddlab.paths import check_writable
from sddlab.preparation import check_config
from sddlab.presets import get_preset
from sddlab.runs import is_finished, run_dir_of
from sddlab.runtime import resolve_device
from sddlab.store import RunStore
from sddlab.sweep_report import report_lock, summarize, sweep_figure

FILE_KEYS = {"name", "preset", "config", "seeds", "set", "grid", "executor", "max_points"}
EXECUTOR_KEYS = {"kind", "lockstep", "workers", "threads", "ray", "slurm"}


@dataclass(frozen=True)
class SweepSpec:
    """What to run and where: `base` with each combination of `grid`, for each of `seeds`."""

    name: str
    base: Config
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    executor: str = "inprocess"
    lockstep: bool | None = None  # None: on in process (stacked seeds), off for pools and clusters
    options: dict[str, Any] = field(default_factory=dict)  # workers, threads, or the engine's own
    max_points: int | None = None  # None: sddlab.limits.MAX_POINTS

    def __post_init__(self) -> None:
        check_sweep_name("name", self.name)
        if self.executor not in EXECUTORS:
            raise ConfigError("executor", self.executor, ", ".join(EXECUTORS))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds", list(self.seeds), "one or more distinct non-negative integers")
        if "experiment.seed" in self.grid:
            raise ConfigError("grid", "experiment.seed", "other fields; seeds are given by `seeds`")
        for key in ("workers", "threads"):
            check_count(f"executor.{key}", self.options.get(key))
        check_points([len(values) for values in self.grid.values()], len(self.seeds), self.max_points)
        self.groups()  # every point validated before any work

    @property
    def stacked(self) -> bool:
        return self.executor == "inprocess" if self.lockstep is None else self.lockstep

    def groups(self) -> list[list[Config]]:
        """One list per grid point: that point's config for each seed (validated once, then remembered); a
        point that repeats another's run, or that a run would refuse, is refused here, before any work."""
        if "_groups" not in self.__dict__:
            keys, points, seen, checked = list(self.grid), [], {}, set()
            for values in itertools.product(*self.grid.values()):
                point = dict(zip(keys, values, strict=True))
                config = self.base.with_overrides(point)
                name = config.run_name()
                if name in seen:  # e.g. lr=0.1,0.1 or 0.1,1e-1: one run counted twice
                    raise ConfigError("grid", point, f"distinct points; this one is the same run as {seen[name]}")
                seen[name] = point
                rules = _rules_key(config)
                if rules not in checked:  # what a run would check only once it starts
                    check_config(config)
                    checked.add(rules)
                points.append([config.with_overrides({"experiment.seed": int(seed)}) for seed in self.seeds])
            object.__setattr__(self, "_groups", points)  # frozen: the cache is not a field
        return [list(group) for group in self.__dict__["_groups"]]

    def tasks(self, results: Path) -> list[Task]:
        """What is left: lockstep groups of a point's unfinished seeds when stacked, else single runs."""
        tasks = []
        for group in self.groups():
            todo = [config for config in group if not is_finished(config, results)]
            if todo and self.stacked and supports_lockstep(todo[0]):
                tasks.append(Task.of(todo, lockstep=True))
            else:
                tasks += [Task.of([config], lockstep=False) for config in todo]
        return tasks

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base": json.loads(self.base.to_json()), "grid": self.grid,
                "seeds": list(self.seeds), "executor": self.executor, "lockstep": self.stacked,
                "options": self.options, "max_points": self.max_points}


def _rules_key(config: Config) -> str:
    """The fields `check_config` reads: points that share them pass or fail it together."""
    payload = config.hash_payload()
    return json.dumps([config.data.name, payload["noise"], payload["model"], payload["pruning"],
                       config.experiment.levels, config.training.early_stop], sort_keys=True)


def _base_config(preset: str | None, config_file: str | Path | None, overrides: dict[str, Any]) -> Config:
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError("config", str(config_file), "an existing JSON config file")
        config = Config.from_json(path.read_text())
    else:
        config = get_preset(preset or "digits")
    return config.with_overrides(overrides) if overrides else config


def _axis_values(key: str, values: Any) -> tuple[Any, ...]:
    """A grid axis; the string "null" stands for None (a field's unset value), which TOML cannot write."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"grid.{key}", values, "a non-empty list of values")
    return tuple(None if value == "null" else value for value in values)


def load_sweep(path: str | Path, *, name: str | None = None, seeds: list[int] | None = None,
               max_points: int | None = None, **executor_overrides: Any) -> SweepSpec:
    """A sweep file (TOML): name, preset or config, seeds, max_points, [set], [grid], [executor] (+
    [executor.ray/slurm]); `name`, `seeds`, `max_points` and the executor's settings given here win."""
    path = Path(path)
    if not path.is_file():
        raise SddError(f"sweep file={str(path)!r} is not allowed: an existing TOML file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SddError(f"sweep file={str(path)!r} is not allowed: valid TOML ({error})") from None
    for key in sorted(set(data) - FILE_KEYS):
        raise ConfigError(f"sweep.{key}", data[key], f"one of {', '.join(sorted(FILE_KEYS))}")
    runner = dict(data.get("executor", {}))
    for key in sorted(set(runner) - EXECUTOR_KEYS):
        raise ConfigError(f"executor.{key}", runner[key], f"one of {', '.join(sorted(EXECUTOR_KEYS))}")
    runner.update({key: value for key, value in executor_overrides.items() if value is not None})
    return make_sweep(
        name or data.get("name", path.stem), preset=data.get("preset"), config_file=data.get("config"),
        overrides=data.get("set", {}), grid={k: _axis_values(k, v) for k, v in data.get("grid", {}).items()},
        seeds=seeds or data.get("seeds", [0]), max_points=max_points or data.get("max_points"), **runner)


def parse_grid(texts: list[str], option: str = "--grid") -> dict[str, tuple[Any, ...]]:
    """`--grid noise.rate=0.2,0.4` (comma list) or `--grid 'model.hidden=[[64,64],[128,128]]'` (a JSON list);
    errors name `option`, the flag the values came from."""
    grid = {}
    for text in texts:
        key, raw = parse_assignment(text)[0], text.split("=", 1)[1].strip()
        if key in grid:
            raise ConfigError(f"{option} {key}", raw, f"one {option} per field (this field already has "
                              f"{','.join(map(str, grid[key]))}): list all its values in one, e.g. {key}=0.1,0.2")
        if raw.startswith("["):
            values = parse_assignment(text)[1]
            if not isinstance(values, list):
                raise ConfigError(f"{option} {key}", raw, "a JSON list of values, or values separated by commas")
        else:
            values = [parse_assignment(f"{key}={part}")[1] for part in raw.split(",") if part.strip()]
        grid[key] = _axis_values(key, values)
    return grid


def make_sweep(name: str, *, preset: str | None = None, config_file: str | Path | None = None,
               overrides: dict[str, Any] | None = None, grid: dict[str, tuple[Any, ...]] | None = None,
               seeds: list[int] | tuple[int, ...] = (0,), kind: str = "inprocess", lockstep: bool | None = None,
               max_points: int | None = None, **options: Any) -> SweepSpec:
    """A validated sweep from its parts (what the file and the command line both give); one of more than
    `max_points` runs (default `sddlab.limits.MAX_POINTS`) is refused before a single point is built."""
    if not isinstance(seeds, (list, tuple)) or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError("seeds", seeds, "a list of non-negative integers")
    base = _base_config(preset, config_file, overrides or {})  # with_overrides checks it is a dict
    engine_options = {**options.pop("ray", {}), **options.pop("slurm", {})}
    return SweepSpec(name, base, dict(grid or {}), tuple(seeds), kind, lockstep, {**options, **engine_options},
                     max_points)


@dataclass
class SweepResult:
    """What a sweep did: its tidy table over every finished point, the summary, failures and its folder."""

    spec: SweepSpec
    table: pd.DataFrame
    summary: pd.DataFrame
    failed: dict[str, str]  # run name -> why
    ran: int  # runs (grid point x seed) handed to the executor this time
    directory: Path

    @property
    def ok(self) -> bool:
        return not self.failed


def _why_failed(config: Config, results: Path, task_error: str) -> str:
    """A failed point's own reason: its stored diverged level when it has one (a lockstep group's error
    names all its seeds), else its task's error."""
    run_dir = run_dir_of(config, results)
    if (run_dir / "config.json").exists():
        for record in RunStore(run_dir).records():
            if isinstance(record.get("diverged"), str):
                return f"Diverged: {record['diverged']}"
    return task_error


def _advance(bar: tqdm, results: Path) -> Callable[[Outcome], None]:
    """Move the sweep's bar by the runs of each task as it ends; the runs left unfinished counted as failed
    (a lockstep group that fails may still have finished some seeds)."""
    failed = 0

    def done(outcome: Outcome) -> None:
        nonlocal failed
        if outcome.error:
            failed += sum(not is_finished(Config.from_json(text), results) for text in outcome.task.configs)
            bar.set_postfix_str(f"{failed} failed", refresh=False)
        bar.update(len(outcome.task.configs))

    return done


def run_sweep(spec: SweepSpec, results: str | Path | None = None, *, data_dir: str | Path | None = None,
              device: str = "auto", progress: bool = False) -> SweepResult:
    """Run what is left of the sweep on its executor; write its report; failures are reported, not raised.

    Before anything starts: the engine must import (and SLURM be there for `slurm`), and each model fit
    this machine (local executors). One sweep writes a report at a time: a second one of the same name
    says the report is busy, then waits. `progress` shows a bar of the runs (grid point x seed) as their
    tasks end."""
    results = paths.results_dir(results)
    check_writable(results)
    preflight(spec.executor, spec.options, results)
    if spec.executor in ("inprocess", "process"):
        models = {config.model: config for group in spec.groups() for config in group[:1]}
        for config in models.values():
            check_model_fits(config, resolve_device(device), len(spec.seeds) if spec.stacked else 1)
    with report_lock(results, spec) as directory:
        tasks = spec.tasks(results)
        where = Where(str(results), None if data_dir is None else str(data_dir), device)
        bar = tqdm(total=sum(len(task.configs) for task in tasks), desc=f"sweep {spec.name}", unit="run",
                   disable=not progress or not tasks, dynamic_ncols=True)
        try:
            outcomes: list[Outcome] = execute(spec.executor, tasks, where, spec.options, done=_advance(bar, results))
        finally:
            bar.close()
        failed = {}
        for outcome in outcomes:
            for config in (Config.from_json(text) for text in outcome.task.configs):
                if outcome.error and not is_finished(config, results):
                    failed[config.run_name()] = _why_failed(config, results, outcome.error)
        dirs = [run_dir_of(config, results) for group in spec.groups() for config in group]
        table = index([d for d in dirs if (d / "config.json").exists()])
        summary = summarize(table, list(spec.grid))
        write_json(directory / "sweep.json", {**spec.to_dict(), "points": [d.name for d in dirs], "failed": failed})
        atomic_write_text(directory / "summary.csv", summary.to_csv(index=False))
        if not table.empty:
            write_html(sweep_figure(table, spec), directory / "figure.html")
    return SweepResult(spec, table, summary, failed, sum(len(task.configs) for task in tasks), directory)
