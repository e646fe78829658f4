"""Many runs of one experiment: seeds and grids of overrides, run one after another, indexed together.

A run is a pure function config -> run directory, so an engine such as Ray or submitit can map
`sddlab.run` over the same list of configs on a cluster; this module stays the local, sequential path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from sddlab.config import Config
from sddlab.runner import run
from sddlab.store import index


def with_seeds(config: Config, seeds: Sequence[int]) -> list[Config]:
    """One config per seed."""
    return [config.with_overrides({"experiment.seed": int(seed)}) for seed in seeds]


def grid(config: Config, axes: dict[str, Sequence[Any]]) -> list[Config]:
    """The cartesian product of dotted-field overrides, e.g. {'noise.rate': [0.2, 0.4], 'experiment.seed': [0, 1]}."""
    keys = list(axes)
    return [config.with_overrides(dict(zip(keys, values, strict=True))) for values in itertools.product(*axes.values())]


def run_many(configs: Iterable[Config], results: str | Path = "results", *, progress: bool = True,
             **run_kwargs: Any) -> pd.DataFrame:
    """Run (or resume, or read back) every config; one tidy table over all of them (see `sddlab.index`)."""
    configs = list(configs)  # each was validated on construction
    run_dirs = []
    for config in tqdm(configs, desc="runs", unit="run", disable=not progress or len(configs) < 2):
        run_dirs.append(run(config, results, progress=progress, **run_kwargs))
    return index(run_dirs)
