"""The `sddlab sweep` command's logic: a sweep file or the same on the command line, run, then reported."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sddlab.assignments import parse_assignment
from sddlab.collect import DamagedRunWarning
from sddlab.config import Config
from sddlab.errors import ConfigError, SddError, shown
from sddlab.limits import check_count, check_sweep_name
from sddlab.paths import check_writable, results_dir, results_field
from sddlab.runtime import resolve_device
from sddlab.sweeps import SweepResult, SweepSpec, load_sweep, make_sweep, parse_grid, run_sweep


def split_positionals(tokens: list[str], seeds: list[str]) -> tuple[str | None, list[int]]:
    """`sweep FILE --seeds 0 1 2`: integers after `--seeds` land among the positionals; the rest is FILE."""
    files = [token for token in tokens if not token.lstrip("-").isdigit()]
    extra = [token for token in tokens if token.lstrip("-").isdigit()]
    if len(files) > 1:
        raise SddError(f"sweep arguments={shown(' '.join(tokens))} are not allowed: at most one sweep FILE")
    if files and (seeds or extra) and not files[0].endswith(".toml") and not Path(files[0]).exists():  # `--seeds 0 x1`
        raise SddError(f"--seeds / FILE={shown(files[0])} is not allowed: seeds are integers (e.g. --seeds 0 1 2), "
                       "and no sweep file of that name exists")
    values = [part for text in [*seeds, *extra] for part in text.split(",") if part.strip()]
    try:
        parsed = [int(value) for value in values]
    except ValueError:
        raise SddError(f"--seeds={shown(' '.join(values))} is not allowed: integers, e.g. --seeds 0 1 2") from None
    return (files[0] if files else None), parsed


def build_spec(file: str | None, *, name: str | None, preset: str | None, config: Path | None, sets: list[str],
               grids: list[str], seeds: list[int], executor: dict[str, Any],
               max_points: int | None = None) -> SweepSpec:
    """The sweep of FILE with command-line name, seeds, limit and executor settings on top, or the sweep the
    flags describe; the flags' values are checked first, each error naming its flag."""
    if name is not None:
        check_sweep_name("--name", name)
    for key in ("workers", "threads"):
        check_count(f"--{key}", executor.get(key))
    if max_points is not None and max_points < 1:
        raise ConfigError("--max-points", max_points, "an integer of at least 1")
    if file is not None:
        if sets or grids or preset or config:
            raise SddError("--set/--grid/--preset/--config are not allowed with a sweep FILE: put them in the file")
        return load_sweep(file, name=name, seeds=seeds or None, max_points=max_points, **executor)
    overrides = dict(parse_assignment(text) for text in sets)
    runner = {key: value for key, value in executor.items() if value is not None}
    return make_sweep(name or "sweep", preset=preset, config_file=config, overrides=overrides, grid=parse_grid(grids),
                      seeds=seeds or [0], max_points=max_points, **runner)


def check_where(results: Path | None, device: str) -> None:
    """A training command's --device and --results folder, refused in one line each before any work starts."""
    resolve_device(device)
    check_writable(results_dir(results), results_field(results))


def _label(config: Config, axes: list[str]) -> str:
    """A point as the sweep sees it: its grid values and seed."""
    flat = config.flat()
    return ", ".join([*(f"{key}={flat[key]}" for key in axes), f"seed {config.experiment.seed}"])


def report(result: SweepResult, echo: Callable[..., None]) -> int:
    """Print the summary (mean ± std per level and group) and any failures; the exit code."""
    summary = result.summary
    if not summary.empty:
        keys = [*result.spec.grid, "level"]
        shown = summary[keys].copy()
        shown["sparsity"] = (100 * summary["sparsity"]).map("{:.2f}%".format)
        shown["seeds"] = summary["seeds"]
        for column in (c for c in ("test_acc", "train_acc_noisy") if f"{c}_mean" in summary):
            shown[column] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(summary[f"{column}_mean"], summary[f"{column}_std"],
                                                                  strict=True)]
        with pd.option_context("display.width", 200, "display.max_rows", 1000):
            echo(shown.to_string(index=False))
    runs = sum(len(group) for group in result.spec.groups())
    echo(f"sweep {result.spec.name}: {result.ran} unfinished run(s) attempted now; {runs - len(result.failed)} of "
         f"{runs} run(s) finished, {len(result.failed)} failed; report in {result.directory}")
    labels = {config.run_name(): _label(config, list(result.spec.grid))
              for group in result.spec.groups() for config in group}
    for name, reason in result.failed.items():
        echo(f"failed: {name} ({labels.get(name, '?')}): {reason}", err=True)
    if any(not reason.startswith("Diverged:") for reason in result.failed.values()):
        echo("rerun the same command to finish only the failed points", err=True)
    elif result.failed:
        echo("diverged points diverge again when rerun (training is deterministic): change their config, "
             "as each line above advises", err=True)
    return 1 if result.failed else 0


def sweep(file: str | None, *, results: Path | None, data: Path | None, device: str,
          echo: Callable[..., None], progress: bool = True, **spec_args: Any) -> int:
    """Build, run and report a sweep; returns the exit code (1 when points failed)."""
    spec = build_spec(file, **spec_args)
    check_where(results, device)
    with warnings.catch_warnings(record=True) as caught:  # a point verify would not pass: one line each
        warnings.simplefilter("always", DamagedRunWarning)
        result = run_sweep(spec, results, data_dir=data, device=device, progress=progress)
    for warning in caught:
        echo(f"sddlab: warning: {warning.message}", err=True)
    return report(result, echo)
