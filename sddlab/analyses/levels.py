"""A run directory opened for analysis, and the one per-level driver every level-wise analysis uses.

`AnalysedRun.per_level(cache, levels, compute)` opens each unfinished level once (record, mask, final
weights) as an `OpenedLevel`, hands it to `compute(opened) -> rows` and caches the rows, so an analysis
is only its measurement. Levels are ints throughout; the cache's item names are made from them, never
read back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from sddlab.analyses.cache import AnalysisCache, level_item
from sddlab.divergence import diverged_note, is_diverged
from sddlab.errors import SddError
from sddlab.preparation import Setup, level_span, prepare
from sddlab.pruning import Mask, apply_mask
from sddlab.runtime import Runtime, resolve_device
from sddlab.seeds import numpy_stream
from sddlab.store import RunStore
from sddlab.training import Span, make_optimizer, train

Weights = dict[str, torch.Tensor]
SPLITS = ("train", "test")


class AnalysedRun:
    """Read-only view of one run directory; data and model are built lazily (distances need neither).

    Levels are those with a finished record; asking for any other level is an `SddError`.
    """

    def __init__(self, run_dir: str | Path, data_dir: str | Path | None = None, device: str = "auto",
                 runtime: Runtime | None = None):
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise SddError(f"run directory {str(run_dir)!r} does not exist")
        self.store = RunStore(run_dir)
        self.dir = self.store.dir
        self.config = self.store.config()
        self.seed = self.config.experiment.seed
        self.data_dir = data_dir  # None: sddlab.paths.data_dir()
        self.runtime = runtime or Runtime(device=resolve_device(device))

    def __repr__(self) -> str:
        return f"AnalysedRun({str(self.dir)!r}, levels finished: {len(self.finished_levels())})"

    # -- levels -----------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        return self.store.records()

    def table(self) -> pd.DataFrame:
        return self.store.table()

    def finished_levels(self) -> list[int]:
        """The levels with measurements and a checkpoint: finished and not diverged."""
        return [int(record["level"]) for record in self.records() if not is_diverged(record)]

    def diverged(self) -> dict[int, str]:
        """Each diverged level -> 'level L: why' (it has no measurements and no checkpoint to analyse)."""
        return {int(record["level"]): diverged_note(record) for record in self.records() if is_diverged(record)}

    def check_measured(self) -> None:
        """One clear SddError when the run diverged before any measured level: it has nothing to analyse."""
        diverged = self.diverged()
        if diverged and not self.finished_levels():
            raise SddError(f"{self.dir.name} diverged ({diverged[min(diverged)]}): it has no measured level, "
                           "so there is nothing to analyse")

    def record(self, level: int) -> dict[str, Any]:
        self.check_levels([level])
        return next(r for r in self.records() if int(r["level"]) == level)

    def check_levels(self, levels: list[int]) -> list[int]:
        """`levels` as ints, each an existing and finished level of this run, else one clear SddError."""
        finished, diverged = set(self.finished_levels()), self.diverged()
        last = self.config.experiment.levels
        out = []
        for level in levels:
            level = int(level)
            if not 0 <= level <= last:
                raise SddError(f"level {level} is not a level of {self.dir.name} (levels 0..{last})")
            if level in diverged:
                raise SddError(f"{self.dir.name} diverged ({diverged[level]}): that level has nothing to analyse "
                               f"(measured levels: {', '.join(map(str, sorted(finished))) or 'none'})")
            if level not in finished:
                done = ", ".join(str(lv) for lv in sorted(finished)) or "none"
                raise SddError(f"level {level} of {self.dir.name} is not finished yet (finished levels: {done})")
            if level not in out:
                out.append(level)
        return out

    def resolve_levels(self, levels: list[int] | None) -> list[int]:
        """The given levels, checked; None means every finished level."""
        if levels is None:
            self.check_measured()
            finished = self.finished_levels()
            if not finished:
                raise SddError(f"{self.dir.name} has no finished level yet")
            return finished
        return self.check_levels(list(levels))

    # -- built lazily -----------------------------------------------------------------------------
    @functools.cached_property
    def setup(self) -> Setup:
        """Data (with the run's label noise) and model, exactly as the run built them."""
        self.runtime.configure_backends()  # as the run did (flushed denormals on the CPU)
        return prepare(self.config, self.data_dir, self.runtime)

    def level_span(self, level: int, stream: str | None = None) -> Span:
        """The iterations, schedule and optimizer settings the run trained `level` with."""
        return level_span(self.setup, level, stream)

    def train(self, model: torch.nn.Module, mask: Mask, span: Span, desc: str, progress: bool = True) -> None:
        """Train `span` with a fresh optimizer through the one training loop, with an epoch progress bar."""
        with tqdm(total=span.epochs, desc=desc, unit="ep", leave=False, disable=not progress) as bar:
            train(model, mask, self.setup.data, span, make_optimizer(model, span.training), self.runtime,
                  on_epoch=lambda stats: bar.update(1))

    @property
    def device(self) -> str:
        return self.runtime.device

    # -- checkpoints ------------------------------------------------------------------------------
    def init_state(self) -> Weights:
        """The original dense initialisation."""
        return self.store.load_checkpoint("init", self.device)

    def rewind_state(self) -> Weights:
        """The dense weights at the rewind point (the init itself when the run rewinds to iteration 0)."""
        if self.store.has_checkpoint("rewind"):
            return self.store.load_checkpoint("rewind", self.device)
        return self.init_state()

    def load_model(self, weights: Weights, mask: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
        """The run's model holding `weights` (masked when a mask is given)."""
        model = self.setup.model
        model.load_state_dict(weights)
        if mask:
            apply_mask(model, mask)
        return model

    # -- data -------------------------------------------------------------------------------------
    def eval_set(self, split: str, subset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs after the evaluation transform, labels) of 'train' (noisy labels) or 'test'.

        `subset`: a seeded random choice of that many examples (the same every call), or all of them.
        """
        data = self.setup.data
        if split == "train":
            x, y = data.x_train, data.y_train
        elif split == "test":
            x, y = data.x_test, data.y_test
        else:
            raise SddError(f"split={split!r} is not allowed: train or test")
        if subset is not None and subset < len(y):
            keep = np.sort(numpy_stream(self.seed, "analysis-subset", split).choice(len(y), subset, replace=False))
            index = torch.from_numpy(keep).to(y.device)
            x, y = x[index], y[index]
        with torch.no_grad():
            return data.spec.eval_transform(x), y

    # -- the per-level driver ---------------------------------------------------------------------
    def per_level(self, cache: AnalysisCache, levels: list[int], compute: Callable[[OpenedLevel], list[dict]],
                  desc: str = "", progress: bool = True) -> pd.DataFrame:
        """Rows of every level: read back from `cache` when finished, else computed from the opened level."""
        by_item = {level_item(level): level for level in levels}
        return cache.items(list(by_item), lambda item: compute(self.open_level(by_item[item])), desc=desc,
                           progress=progress)

    def open_level(self, level: int) -> OpenedLevel:
        """A finished level: its record, mask and final weights (on the run's device)."""
        record = self.record(level)  # one clear error for an unknown or unfinished level
        mask, weights = self.store.load_level_state(level, self.device)
        return OpenedLevel(self, level, record, mask, weights)


@dataclass
class OpenedLevel:
    """One finished level of a run: its record, mask and final weights."""

    run: AnalysedRun
    level: int
    record: dict[str, Any]
    mask: Mask
    weights: Weights

    @property
    def item(self) -> str:
        """The level's item name in an analysis cache (its trained weights are stored under it)."""
        return level_item(self.level)

    @property
    def sparsity(self) -> float:
        return self.record["sparsity"]

    def model(self) -> torch.nn.Module:
        """The run's model holding this level's weights, pruned weights at exactly zero."""
        return self.run.load_model(self.weights, self.mask)

    def row(self, **values: Any) -> dict[str, Any]:
        """A table row that starts with the level, its sparsity and remaining weights."""
        return {"level": self.level, "sparsity": self.sparsity, "remaining": self.record["remaining"], **values}


def as_run(run: AnalysedRun | str | Path, data_dir: str | Path | None = None, device: str = "auto") -> AnalysedRun:
    """An `AnalysedRun` from a path (or the object itself, so analyses can share one loaded run)."""
    return run if isinstance(run, AnalysedRun) else AnalysedRun(run, data_dir, device)
