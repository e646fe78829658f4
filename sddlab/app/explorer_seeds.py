"""The explorer's seeds control: K runs of the chosen config with seeds s, s + 1, ..., s + K - 1.

They run through `sddlab.runs.run_seeds` (MLPs in lockstep as one stacked model, conv nets one after
another); each is an ordinary run directory, so Stop / Resume and reading back from the store work per seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import plotly.graph_objects as go

from sddlab.config import Config
from sddlab.figures.export import write_run_figure
from sddlab.figures.live import LiveFigures
from sddlab.lockstep import SeedListener, supports_lockstep
from sddlab.runs import run_dir_of, run_seeds, with_seeds
from sddlab.store import RunStore


def seed_values(config: Config, count: int) -> list[int]:
    """The seeds a count stands for: the config's seed and the next `count - 1`."""
    return list(range(config.experiment.seed, config.experiment.seed + count))


def in_lockstep(config: Config, count: int) -> bool:
    """Whether `run_seeds` trains the seeds together (several seeds of a config it can stack: the MLP family)."""
    return count > 1 and supports_lockstep(config)


def describe(config: Config, count: int) -> str:
    """'3 seeds (0, 1, 2) in lockstep, one stacked model' or '... one after another' (the explorer's note)."""
    seeds = ", ".join(map(str, seed_values(config, count)))
    how = ("in lockstep, one stacked model" if in_lockstep(config, count) else
           f"one after another ({config.model.name} with this training does not stack)")
    return f"{count} seeds ({seeds}) {how}"


def stored(config: Config, count: int, results: Path) -> dict[int, list[dict]]:
    """Each seed's finished levels in the store (an empty list for a seed that never ran)."""
    out = {}
    for seeded in with_seeds(config, seed_values(config, count)):
        run_dir = run_dir_of(seeded, results)
        out[seeded.experiment.seed] = RunStore(run_dir).records() if (run_dir / "config.json").exists() else []
    return out


def show_stored(figures: LiveFigures, config: Config, count: int, results: Path) -> None:
    """Draw what the store holds: one run as a single run's figure, several with their lines and band."""
    by_seed = stored(config, count, results)
    if count > 1:
        figures.show_seeds(by_seed)
    else:
        figures.show_records(by_seed[config.experiment.seed])


def run_all(config: Config, count: int, results: str | Path | None = None, *, data_dir: str | Path | None = None,
            listener: SeedListener | None = None, should_stop: Callable[[], bool] | None = None,
            device: str = "auto", progress: bool = False, epoch_metrics: bool = False) -> list[Path]:
    """Run (or resume, or read back) the `count` seeds; every run directory gets its `figure.html`."""
    run_dirs = run_seeds(config, seed_values(config, count), results, listener=listener, device=device,
                         should_stop=should_stop, data_dir=data_dir, progress=progress, epoch_metrics=epoch_metrics)
    for run_dir in run_dirs:
        write_run_figure(run_dir)
    return run_dirs


def write_partial_figures(config: Config, count: int, results: Path) -> None:
    """`figure.html` of every run (one per seed) that stored a level before a stop."""
    for seeded in with_seeds(config, seed_values(config, count)):
        run_dir = run_dir_of(seeded, results)
        if (run_dir / "config.json").exists() and RunStore(run_dir).records():
            write_run_figure(run_dir)


def seeds_figure(run_dirs: list[Path]) -> go.Figure:
    """The explorer's level figure of several run directories: each seed's line and their mean ± std band."""
    figures = LiveFigures()
    figures.show_seeds({RunStore(d).config().experiment.seed: RunStore(d).records() for d in run_dirs})
    return figures.levels
