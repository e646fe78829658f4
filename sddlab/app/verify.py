"""`sddlab verify RUN_DIR...`: check run directories (checksums, JSON, safetensors, links), changing nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sddlab.collect import find_runs
from sddlab.errors import SddError
from sddlab.integrity import check_run, summary
from sddlab.store import CONFIG_FILE


def run_dirs_under(paths: list[Path]) -> list[Path]:
    """Each path that is a run directory, and the run directories found under each folder that is not."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise SddError(f"RUN_DIR={str(path)!r} is not allowed: an existing run directory or folder of them")
        runs = [path] if (path / CONFIG_FILE).exists() else find_runs(path)
        if not runs:
            raise SddError(f"RUN_DIR={str(path)!r} is not allowed: a folder holding at least one run directory")
        found += runs
    return found


def verify(paths: list[Path], echo: Callable[[str], None]) -> int:
    """Print one line per intact run and per damaged file; returns the exit code (0 clean, 1 damaged)."""
    runs = run_dirs_under(paths)
    damaged = 0
    for run_dir in runs:
        damages = check_run(run_dir)
        damaged += bool(damages)
        for line in summary(run_dir, damages):
            echo(line)
    if damaged:
        echo(f"{damaged} of {len(runs)} run directories damaged; `sddlab run --config RUN_DIR/config.json "
             "--results PARENT` moves damaged files into RUN_DIR/damaged/ and recomputes them")
    return 1 if damaged else 0
