"""A finished (or partial) run directory opened for analysis: config, data, model, checkpoints, levels."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sddlab.errors import SddError
from sddlab.experiment import Experiment, Plan, plan, resolve_device
from sddlab.seeds import numpy_stream
from sddlab.store import RunStore
from sddlab.training import Runtime

Weights = dict[str, torch.Tensor]
SPLITS = ("train", "test")


class AnalysedRun:
    """Read-only view of one run directory; data and model are built lazily (distances need neither).

    Levels are those with a finished record; asking for any other level is an `SddError`.
    """

    def __init__(self, run_dir: str | Path, data_dir: str | Path = "data", device: str = "auto",
                 runtime: Runtime | None = None):
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise SddError(f"run directory {str(run_dir)!r} does not exist")
        self.store = RunStore(run_dir)
        self.dir = self.store.dir
        self.config = self.store.config()
        self.seed = self.config.experiment.seed
        self.data_dir = Path(data_dir)
        self.runtime = runtime or Runtime(device=resolve_device(device))

    def __repr__(self) -> str:
        return f"AnalysedRun({str(self.dir)!r}, levels finished: {len(self.finished_levels())})"

    # -- levels -----------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        return self.store.records()

    def table(self) -> pd.DataFrame:
        return self.store.table()

    def finished_levels(self) -> list[int]:
        return [int(record["level"]) for record in self.records()]

    def record(self, level: int) -> dict[str, Any]:
        self.check_levels([level])
        return next(r for r in self.records() if int(r["level"]) == level)

    def check_levels(self, levels: list[int]) -> list[int]:
        """`levels` as ints, each an existing and finished level of this run, else one clear SddError."""
        finished = set(self.finished_levels())
        last = self.config.experiment.levels
        out = []
        for level in levels:
            level = int(level)
            if not 0 <= level <= last:
                raise SddError(f"level {level} is not a level of {self.dir.name} (levels 0..{last})")
            if level not in finished:
                done = ", ".join(str(lv) for lv in sorted(finished)) or "none"
                raise SddError(f"level {level} of {self.dir.name} is not finished yet (finished levels: {done})")
            if level not in out:
                out.append(level)
        return out

    def resolve_levels(self, levels: list[int] | None) -> list[int]:
        """The given levels, checked; None means every finished level."""
        if levels is None:
            finished = self.finished_levels()
            if not finished:
                raise SddError(f"{self.dir.name} has no finished level yet")
            return finished
        return self.check_levels(list(levels))

    # -- built lazily -----------------------------------------------------------------------------
    @functools.cached_property
    def plan(self) -> Plan:
        """Data (with the run's label noise) and model, exactly as the run built them."""
        self.runtime.configure_backends()  # as the runner (flushed denormals on the CPU)
        return plan(self.config, self.data_dir, self.runtime)

    @functools.cached_property
    def experiment(self) -> Experiment:
        """The run's experiment object, used for `level_plan` (iteration windows and schedules)."""
        return Experiment(self.plan, self.store)

    @property
    def device(self) -> str:
        return self.runtime.device

    # -- checkpoints ------------------------------------------------------------------------------
    def level_state(self, level: int) -> tuple[dict[str, torch.Tensor], Weights]:
        """(mask, final weights) of a finished level, on the run's device."""
        self.check_levels([level])
        return self.store.load_level_state(level, self.device)

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
        model = self.plan.model
        model.load_state_dict(weights)
        if mask:
            from sddlab.pruning import apply_mask

            apply_mask(model, mask)
        return model

    # -- data -------------------------------------------------------------------------------------
    def eval_set(self, split: str, subset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs after the evaluation transform, labels) of 'train' (noisy labels) or 'test'.

        `subset`: a seeded random choice of that many examples (the same every call), or all of them.
        """
        data = self.plan.data
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


def as_run(run: AnalysedRun | str | Path, data_dir: str | Path = "data", device: str = "auto") -> AnalysedRun:
    """An `AnalysedRun` from a path (or the object itself, so analyses can share one loaded run)."""
    return run if isinstance(run, AnalysedRun) else AnalysedRun(run, data_dir, device)
