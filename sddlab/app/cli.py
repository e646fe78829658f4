"""`sddlab` command line: run presets, list presets, show and index results, analyse runs, run notebooks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

import sddlab
from sddlab import analyses
from sddlab.analyses.cache import AnalysisResult
from sddlab.app.notebooks import execute, parse_value
from sddlab.app.tables import format_result, format_table
from sddlab.config import Config, parse_assignment
from sddlab.data.tinyimagenet import reorganise_tiny_imagenet
from sddlab.errors import SddError
from sddlab.figures.curve import curve_figure
from sddlab.io import write_html
from sddlab.phases import detect_phases
from sddlab.presets import cost, get_preset, list_presets
from sddlab.runtime import Runtime, resolve_device
from sddlab.store import RunStore, index

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Reproduce, explore and teach sparse double descent.")


def _build_config(preset: str, config_file: Path | None, assignments: list[str]) -> Config:
    """A preset or a config file, with `--set` overrides applied and validated."""
    if config_file is not None:
        if not config_file.is_file():
            raise SddError(f"--config={str(config_file)!r} is not allowed: an existing JSON config file")
        try:
            config = Config.from_json(config_file.read_text())
        except (json.JSONDecodeError, TypeError) as error:  # not JSON, or JSON that is not an object
            raise SddError(f"--config={str(config_file)!r} is not allowed: a JSON object of config fields "
                           f"({error})") from None
    else:
        config = get_preset(preset)
    overrides = dict(parse_assignment(text) for text in assignments)
    return config.with_overrides(overrides) if overrides else config


@app.command()
def run(
    preset: str = typer.Option("digits", help="preset name (see `sddlab presets`)"),
    set_: list[str] = typer.Option([], "--set", help="override, e.g. noise.rate=0.2 (repeatable)"),
    config_file: Path | None = typer.Option(None, "--config", help="a config.json instead of a preset"),
    results: Path = typer.Option(Path("results"), help="folder holding run directories"),
    data: Path = typer.Option(Path("data"), help="folder holding data sets"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    amp: bool = typer.Option(True, help="CUDA: bf16 autocast"),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model"),
    deterministic: bool = typer.Option(False, help="CUDA: deterministic kernels (slower)"),
    figure: bool = typer.Option(True, help="write figure.html into the run directory"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Run (or resume) a preset with overrides; print the level table and write the figure."""
    config = _build_config(preset, config_file, set_)
    runtime = Runtime(device=resolve_device(device), amp=amp, compile=compile_model, deterministic=deterministic)
    try:
        run_dir = sddlab.run(config, results, data_dir=data, progress=not quiet, runtime=runtime)
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted: finished levels are kept; run the same command to resume "
                   f"({results / config.run_name()})", err=True)
        raise typer.Exit(130) from None
    table = sddlab.load(run_dir)
    typer.echo(format_table(table))
    phases = detect_phases(table)
    typer.echo(f"phases: {phases.summary}")
    if figure:
        fig = curve_figure(table, title=f"{config.name}: sparse double descent", phases=phases,
                           subtitle=config.description)
        typer.echo(f"figure: {write_html(fig, run_dir / 'figure.html')}")
    typer.echo(f"run directory: {run_dir}")


@app.command()
def presets() -> None:
    """List the presets: name, data set, model, estimated cost (levels x epochs) and what each reproduces."""
    entries = list_presets()
    rows = [(name, c.data.name + (f"[{c.data.subset}]" if c.data.subset else ""), c.model.name, cost(c),
             c.description) for name, c in entries.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(f"{cell:<{width}}" for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4])


@app.command()
def show(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    format: str = typer.Option("table", "--format", help="table, csv or json"),
) -> None:
    """Print the level table of a finished or partial run."""
    if format not in ("table", "csv", "json"):
        raise SddError(f"--format={format!r} is not allowed: table, csv or json")
    table = RunStore(run_dir).table()
    if format == "csv":
        typer.echo(table.to_csv(index=False), nl=False)
    elif format == "json":
        typer.echo(table.to_json(orient="records", indent=2))
    else:
        typer.echo(format_table(table))


@app.command("index")
def index_command(
    results: Path = typer.Argument(Path("results"), help="a folder of run directories"),
    output: Path | None = typer.Option(None, help="write the tidy table as .csv or .parquet"),
) -> None:
    """One tidy table over many runs: a row per run x level, config fields as columns."""
    table = index(results)
    if output is None:
        typer.echo(table.to_csv(index=False), nl=False)
    elif output.suffix == ".parquet":
        table.to_parquet(output, index=False)
    else:
        table.to_csv(output, index=False)


@app.command("tiny-imagenet")
def tiny_imagenet(
    archive: Path = typer.Argument(..., help="the unzipped tiny-imagenet-200 folder (train/, val/, wnids.txt)"),
    out: Path = typer.Option(Path("data/tiny-imagenet"), help="where the class-folder layout goes"),
) -> None:
    """Reorganise the official Tiny ImageNet archive into the class folders the loader reads."""
    if not (archive / "train").is_dir():
        raise SddError(f"archive={str(archive)!r} is not allowed: the unzipped tiny-imagenet-200 folder with train/")
    counts = reorganise_tiny_imagenet(archive, out)
    typer.echo(", ".join(f"{split}: {count} images" for split, count in counts.items()) + f" -> {out}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def notebook(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="notebook name in notebooks/, e.g. 01_curve or lab"),
    output: Path | None = typer.Option(None, help="folder for the executed notebook, figures and values.json"),
) -> None:
    """Run a notebook headless (papermill): sddlab notebook NAME [-p KEY VALUE ...], VALUE read as JSON."""
    args, parameters = list(ctx.args), {}
    while args:
        flag = args.pop(0)
        if flag not in ("-p", "--parameter") or len(args) < 2:
            raise SddError(f"notebook parameters={' '.join(ctx.args)!r} are not allowed: -p KEY VALUE, repeated")
        key, value = args.pop(0), args.pop(0)
        parameters[key] = parse_value(value)
    target = execute(name, parameters, output)
    typer.echo(f"executed notebook: {target}")


@app.command()
def analyse(
    kind: str = typer.Argument(..., help="distance, redense, interpolation, landscape, curvature, tickets, phases, "
                               "flatness, correlations or all"),
    run_dirs: list[Path] = typer.Argument(..., help="a run directory (several for phases, correlations, all)"),
    levels: str | None = typer.Option(None, help="comma-separated levels, e.g. 0,5,10 (default: every finished "
                                      "level; flatness: the dense, critical, sweet and collapse levels)"),
    data: Path = typer.Option(Path("data"), help="folder holding data sets"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    duration: str | None = typer.Option(None, help="re-dense length, e.g. 160ep (default: the run's duration)"),
    lr: float | None = typer.Option(None, help="re-dense constant LR (default: the schedule's final LR)"),
    subset: int | None = typer.Option(None, help="examples per split for interpolation and 1-D curves (default: all)"),
    curvature_subset: int = typer.Option(1000, help="training examples for the Hessian trace and top eigenvalue"),
    probes: int = typer.Option(50, help="Hutchinson probes for the Hessian trace"),
    eig_iters: int = typer.Option(50, help="power iterations for the top eigenvalue"),
    points: int = typer.Option(41, help="points of each 1-D loss curve"),
    span: float = typer.Option(1.0, help="1-D loss curves cover alpha in [-span, span]"),
    directions: int = typer.Option(1, help="random directions per level for the 1-D loss curves"),
    oneshot: bool = typer.Option(True, help="tickets/all: also run one-shot pruning to the same sparsities"),
    results: Path | None = typer.Option(None, help="folder for the one-shot run (default: the run's results folder)"),
    quiet: bool = typer.Option(False, help="no cost lines or progress bars"),
) -> None:
    """Analyse a run directory (cached in RUN_DIR/analyses/): print the table, write HTML figures."""
    outcomes = run_kind(
        kind, list(run_dirs), levels=parse_levels(levels), data_dir=data, device=device,
        redense_options={"duration": duration, "lr": lr}, interpolation_options={"subset": subset},
        landscape_options={"span": span, "points": points, "directions": directions, "subset": subset},
        curvature_options={"subset": curvature_subset, "probes": probes, "eig_iters": eig_iters},
        oneshot=oneshot, results=results, progress=not quiet,
    )
    for outcome in outcomes:
        print_result(outcome, typer.echo)


KINDS: tuple[str, ...] = (
    "distance", "redense", "interpolation", "landscape", "curvature", "tickets", "phases", "flatness",
    "correlations", "all",
)
MULTI_RUN = ("phases", "correlations", "all")


def parse_levels(text: str | None) -> list[int] | None:
    """'0,5,10' -> [0, 5, 10]; None stays None."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SddError(f"--levels={text!r} is not allowed: comma-separated level numbers, e.g. 0,5,10") from None


def run_kind(kind: str, run_dirs: list[Path], *, levels: list[int] | None, data_dir: Path, device: str,
             redense_options: dict[str, Any], interpolation_options: dict[str, Any],
             landscape_options: dict[str, Any], curvature_options: dict[str, Any], oneshot: bool,
             results: Path | None, progress: bool) -> list[AnalysisResult]:
    """Run one kind of analysis on the run directories; returns its results (three for 'all')."""
    if kind not in KINDS:
        raise SddError(f"analysis kind {kind!r} is not allowed: one of {', '.join(KINDS)}")
    if not run_dirs:
        raise SddError("no run directory given: sddlab analyse KIND RUN_DIR [RUN_DIR ...]")
    if len(run_dirs) > 1 and kind not in MULTI_RUN:
        raise SddError(f"analysis {kind!r} takes one run directory ({len(run_dirs)} given); "
                       f"several only for {', '.join(MULTI_RUN)}")
    runs = [analyses.AnalysedRun(path, data_dir, device) for path in run_dirs]
    run = runs[0]
    if levels is not None:
        run.check_levels(levels)
    common = {"progress": progress}
    calls: dict[str, Callable[[], Any]] = {
        "distance": lambda: analyses.distance(run, levels, **common),
        "redense": lambda: analyses.redense(run, levels, **redense_options, **common),
        "interpolation": lambda: analyses.interpolation(run, levels, **redense_options, **interpolation_options,
                                                        **common),
        "landscape": lambda: analyses.landscape(run, levels, **landscape_options, **common),
        "curvature": lambda: analyses.curvature(run, levels, **curvature_options, **common),
        "tickets": lambda: analyses.tickets(run, levels, oneshot=oneshot, results=results, **common),
        "phases": lambda: analyses.phases(runs),
        "flatness": lambda: analyses.flatness(
            run, levels=None if levels is None else {f"level {lv}": lv for lv in levels},
            redense_options=redense_options, interpolation_options=interpolation_options,
            landscape_options=landscape_options, curvature_options=curvature_options, **common),
        "correlations": lambda: analyses.correlations(runs, curvature_options=curvature_options, **common),
        "all": lambda: list(analyses.analyse_all(
            runs, oneshot=oneshot, curvature_options=curvature_options, redense_options=redense_options,
            interpolation_options=interpolation_options, landscape_options=landscape_options, **common).values()),
    }
    outcome = calls[kind]()
    return outcome if isinstance(outcome, list) else [outcome]


def print_result(result: AnalysisResult, echo: Callable[[str], None]) -> None:
    """Print one result (title, summary, table) and write its figures into its analysis folder."""
    echo(f"== {result.kind} ==")
    if result.summary:
        echo(result.summary)
    echo(format_result(result))
    paths = result.write_figures()
    echo(f"analysis folder: {result.directory} ({len(paths)} figures)")


def main() -> None:
    """Entry point: bad input ends with one line on stderr and exit code 2."""
    try:
        app()
    except SddError as error:
        typer.echo(f"sddlab: error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
