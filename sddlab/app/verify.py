"""`sddlab verify RUN_DIR...`: check run directories (checksums, JSON, safetensors, links, missing files),
changing nothing; and the one-line warning readers print about a run that would not pass."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sddlab.collect import find_runs
from sddlab.errors import SddError
from sddlab.integrity import Inspection, inspect, summary
from sddlab.store import CONFIG_FILE


def run_dirs_under(paths: list[Path]) -> list[Path]:
    """Each path that is a run directory, and the run directories found under each folder that is not."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise SddError(f"RUN_DIR={str(path)!r} is not allowed: an existing run directory or folder of them")
        runs = [path] if os.path.lexists(path / CONFIG_FILE) else find_runs(path)
        if not runs:
            raise SddError(f"RUN_DIR={str(path)!r} is not allowed: a folder holding at least one run directory")
        found += runs
    return found


def verify(paths: list[Path], echo: Callable[[str], None]) -> int:
    """Print one line per intact run and per damaged or missing file; returns the exit code: 0 when every
    run verified, 1 when one is damaged, misses files, or has no manifest to check against."""
    runs = run_dirs_under(paths)
    damaged = unverifiable = 0
    for run_dir in runs:
        report = inspect(run_dir)
        damaged += bool(report.damages)
        unverifiable += not report.checked
        for line in summary(report):
            echo(line)
    if damaged or unverifiable:
        echo(f"{damaged} of {len(runs)} run directories damaged, {unverifiable} unverifiable; `sddlab run --config "
             "RUN_DIR/config.json --results PARENT` moves damaged files into RUN_DIR/damaged/ and recomputes them")
    return 1 if damaged or unverifiable else 0


def warn_unverified(report: Inspection, echo: Callable[..., None]) -> None:
    """The one line a reader prints (on stderr) about a run `sddlab verify` would not pass."""
    warning = report.warning()
    if warning:
        echo(f"sddlab: warning: {warning}", err=True)
