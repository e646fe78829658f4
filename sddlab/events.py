"""Events a run emits; progress bars, live figures and the explorer are listeners, the loop knows none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sddlab.training import EpochStats


@dataclass(frozen=True)
class RunStarted:
    run_dir: Path
    levels: int  # total levels including the dense level 0
    finished: int  # levels already in the store
    epochs_per_level: list[int] = field(default_factory=list)  # epochs each level trains


@dataclass(frozen=True)
class LevelStarted:
    level: int
    sparsity: float
    remaining: int


@dataclass(frozen=True)
class EpochEnded:
    level: int
    stats: EpochStats


@dataclass(frozen=True)
class LevelFinished:
    record: dict[str, Any]
    cached: bool = False  # True when read back from the store instead of computed


@dataclass(frozen=True)
class RunFinished:
    run_dir: Path


Event = RunStarted | LevelStarted | EpochEnded | LevelFinished | RunFinished
Listener = Callable[[Event], None]
