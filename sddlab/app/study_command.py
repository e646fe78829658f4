"""`sddlab study`: the antidote table and the selection-regret table over presets, seeds and noise rates."""

from __future__ import annotations

from pathlib import Path

import typer

from sddlab import paths
from sddlab.app.sweep_command import check_where
from sddlab.assignments import parse_assignment
from sddlab.errors import SddError
from sddlab.io import atomic_write_text
from sddlab.studies import ANTIDOTES, antidote_table, run_study, selection_table


def study(
    preset: list[str] = typer.Option(["digits", "fig1-lenet-mnist5k"], help="presets (repeatable)"),
    seeds: str = typer.Option("0,1,2", help="seeds, e.g. 0,1,2"),
    antidote: list[str] = typer.Option(list(ANTIDOTES), help=f"antidotes among {', '.join(ANTIDOTES)} (repeatable)"),
    noise: str = typer.Option("0.2,0.4", help="noise rates of the plain runs for the selection table"),
    holdout: float = typer.Option(0.1, help="share of the noisy training set held out (data.holdout)"),
    set_: list[str] = typer.Option([], "--set", help="override for every run, e.g. experiment.levels=20"),
    executor: str = typer.Option("inprocess", help="inprocess (stacks seeds), process, ray or slurm"),
    workers: int | None = typer.Option(None, help="process pool size (default: the CPU cores)"),
    results: Path | None = typer.Option(None, help="folder holding run directories (default results/)"),
    data: Path | None = typer.Option(None, help="folder holding data sets (default data/)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
) -> None:
    """Run (or read back) the study's sweeps; print and save (results/beyond/) both tables."""
    try:
        seed_list = [int(part) for part in seeds.split(",") if part.strip()]
        rates = [float(part) for part in noise.split(",") if part.strip()]
    except ValueError:
        raise SddError(f"--seeds={seeds!r} / --noise={noise!r} are not allowed: comma-separated numbers") from None
    overrides = dict(parse_assignment(text) for text in set_)
    check_where(results, device)
    table = run_study(preset, seed_list, antidotes=antidote, noise_rates=rates, holdout=holdout,
                      overrides=overrides, results=results, kind=executor, workers=workers, data_dir=data,
                      device=device, on_sweep=lambda result: typer.echo(f"swept {result.spec.name}"))
    antidotes = antidote_table(table)
    regrets, best = selection_table(table)
    folder = paths.results_dir(results) / "beyond"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "antidotes.csv", antidotes.to_csv(index=False))
    atomic_write_text(folder / "selection.csv", regrets.to_csv(index=False))
    typer.echo(antidotes.to_string(index=False, float_format="{:.3f}".format))
    typer.echo(regrets.to_string(index=False, float_format="{:.2f}".format))
    typer.echo(f"recommended selection rule: {best}")
