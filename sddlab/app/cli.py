"""`sddlab` command line: run presets, list presets, show and index results, analyse runs, run notebooks."""

from __future__ import annotations

from sddlab.app.interrupt import Interrupted, deaf_from_now, exit_on_interrupt, interrupted, interrupts_deferred

with interrupts_deferred():  # a Ctrl-C while the command line loads (torch takes seconds): one line, exit 130
    import json
    import sys
    from pathlib import Path

    import pandas as pd
    import typer

    import sddlab
    from sddlab.app.analysis_runner import parse_levels, print_result, run_kind
    from sddlab.app.diagram_command import diagram
    from sddlab.app.index_command import RESULTS_HELP, index_command
    from sddlab.app.notebooks import copy_notebooks, execute, open_jupyter, parse_parameters, register_kernel
    from sddlab.app.report_command import report
    from sddlab.app.study_command import study
    from sddlab.app.tables import format_table
    from sddlab.app.teaching_commands import app as serve_app
    from sddlab.app.teaching_commands import lab_app
    from sddlab.app.tiny_imagenet_command import tiny_imagenet
    from sddlab.app.verify import verify as verify_runs
    from sddlab.app.verify import warn_unverified
    from sddlab.assignments import parse_assignment
    from sddlab.config import Config
    from sddlab.errors import SddError
    from sddlab.events import Event, RunStarted
    from sddlab.figures.axis import paper_axis
    from sddlab.figures.export import write_run_figure
    from sddlab.paths import check_writable, results_dir, results_field
    from sddlab.phases import detect_phases
    from sddlab.presets import cost, get_preset, list_presets
    from sddlab.runs import run_dir_of
    from sddlab.runtime import Runtime, resolve_device
    from sddlab.store import RunStore
    from sddlab.version import __version__

DATA_HELP = "folder of data sets [default: $SDDLAB_DATA, else ./data]"

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Reproduce, explore and teach sparse double descent.")
app.command()(study)
app.command()(diagram)
app.command()(report)
app.command("index")(index_command)
app.command("tiny-imagenet")(tiny_imagenet)
app.command("app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(serve_app)
app.add_typer(lab_app, name="lab")


def _build_config(preset: str, config_file: Path | None, assignments: list[str]) -> Config:
    """A preset or a config file, with `--set` overrides applied and validated."""
    if config_file is not None:
        if not config_file.is_file():
            raise SddError(f"--config={str(config_file)!r} is not allowed: an existing JSON config file")
        try:
            config = Config.from_json(config_file.read_text())
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:  # not JSON text, or not an object
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
    results: Path | None = typer.Option(None, help=RESULTS_HELP),
    data: Path | None = typer.Option(None, help=DATA_HELP),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    amp: bool | None = typer.Option(None, "--amp/--no-amp", help="bf16 autocast: sets training.precision"),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model"),
    deterministic: bool = typer.Option(False, help="CUDA: deterministic kernels (slower)"),
    step: str = typer.Option("auto", help="auto: the MLP family trains through the hand-written step; "
                             "autograd: always through autograd (equal in float64; float32 rounding differs)"),
    figure: bool = typer.Option(True, help="write figure.html into the run directory"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Run (or resume) a preset with overrides; print the level table and write the figure."""
    config = _build_config(preset, config_file, set_)
    if amp is not None:  # precision is part of the run's identity (its hash), so the flag sets the config
        config = config.with_overrides({"training.precision": "bf16" if amp else "fp32"})
    runtime = Runtime(device=resolve_device(device), compile=compile_model, deterministic=deterministic)
    check_writable(results_dir(results), results_field(results))
    try:
        run_dir = sddlab.run(config, results, data_dir=data, progress=not quiet, runtime=runtime, step=step,
                             listener=_say_if_read_back)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: finished levels are kept; run the same command to resume "
                          f"({run_dir_of(config, results)})") from None
    table = sddlab.load(run_dir)
    typer.echo(format_table(table))
    table = paper_axis(table)  # official-count runs: phases and figure on the paper's sparsity
    phases = detect_phases(table)
    typer.echo(f"phases: {phases.summary}")
    if figure:
        typer.echo(f"figure: {write_run_figure(run_dir)}")
    typer.echo(f"run directory: {run_dir}")


def _say_if_read_back(event: Event) -> None:
    """A finished run is read back, not trained: say so, and which step trained it."""
    if isinstance(event, RunStarted) and event.finished == event.levels and not sum(event.epochs_per_level):
        trained = RunStore(event.run_dir).meta().get("step", "an earlier version's")
        typer.echo(f"already finished (trained with the {trained} step): read back, nothing trained; delete "
                   f"{event.run_dir} to train it again", err=True)


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
    report = RunStore(run_dir).read()  # one check of the directory; damaged records are a one-line error
    warn_unverified(report, typer.echo)
    table = pd.DataFrame(report.rows())
    if format == "csv":
        typer.echo(table.to_csv(index=False), nl=False)
    elif format == "json":
        typer.echo(table.to_json(orient="records", indent=2))
    else:
        typer.echo(format_table(table))


@app.command()
def verify(run_dirs: list[Path] = typer.Argument(..., help="run directories, or folders of them")) -> None:
    """Check run directories (checksums, JSON, safetensors, links) without changing them; exit 1 if damaged."""
    raise typer.Exit(verify_runs(run_dirs, typer.echo))


@app.callback(invoke_without_command=True)
def _global_options(
    version: bool = typer.Option(False, "--version", help="print the version and exit", is_eager=True),
) -> None:
    """Reproduce, explore and teach sparse double descent."""
    if version:
        typer.echo(f"sddlab {__version__}")
        raise typer.Exit()


@app.command("copy-notebooks")
def copy_notebooks_command(
    folder: Path = typer.Argument(Path("notebooks"), help="where the notebooks go"),
    overwrite: bool = typer.Option(False, help="replace notebooks that differ from the packaged ones"),
    kernel: bool = typer.Option(True, help="register this Python as the Jupyter kernel the notebooks use"),
) -> None:
    """Copy the packaged notebooks into FOLDER for JupyterLab (edited ones are kept) and register the kernel."""
    outcome = copy_notebooks(folder, overwrite)
    for name, what in outcome.items():
        typer.echo(f"{what:>6}  {folder / name}.ipynb")
    if kernel:
        register_kernel()
    typer.echo(f"open them with: sddlab jupyter {folder}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def jupyter(ctx: typer.Context, folder: Path = typer.Argument(Path("notebooks"), help="a folder of notebooks")) -> None:
    """Open JupyterLab on FOLDER (further options go to JupyterLab); notebooks write to ./results and read
    ./data of the current folder, or the SDDLAB_RESULTS / SDDLAB_DATA variables."""
    raise typer.Exit(open_jupyter(folder, list(ctx.args)))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def notebook(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="notebook name in notebooks/, e.g. 01_curve or lab"),
    output: Path | None = typer.Option(None, help="folder for the executed notebook, figures and values.json"),
    html: bool | None = typer.Option(None, "--html/--no-html", help="also write NAME.html: self-contained, every "
                                     "figure inline, no network (default: on for the lab, the students' handout)"),
) -> None:
    """Run a notebook headless (papermill): sddlab notebook NAME [-p KEY VALUE ...], VALUE read as JSON."""
    html = name.removesuffix(".ipynb") == "lab" if html is None else html
    target = execute(name, parse_parameters(list(ctx.args)), output, html=html)
    typer.echo(f"executed notebook: {target}")
    if html:
        typer.echo(f"handout (HTML):    {target.with_suffix('.html')}")


@app.command()
def analyse(
    kind: str = typer.Argument(..., help="distance, redense, interpolation, landscape, curvature, tickets, phases, "
                               "flatness, correlations, calibration or all"),
    run_dirs: list[Path] = typer.Argument(..., help="a run directory (several for phases, correlations, all)"),
    levels: str | None = typer.Option(None, help="comma-separated levels, e.g. 0,5,10 (default: every finished "
                                      "level; flatness: the dense, critical, sweet and collapse levels; "
                                      "calibration: the reliability diagram's levels, default dense and sweet)"),
    data: Path | None = typer.Option(None, help=DATA_HELP),
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


@app.command(context_settings={"allow_extra_args": True})
def sweep(
    ctx: typer.Context,
    file: str | None = typer.Argument(None, help="a sweep file (TOML); or describe the sweep with the flags"),
    name: str | None = typer.Option(None, help="the sweep's name (its report folder results/sweeps/NAME)"),
    preset: str | None = typer.Option(None, help="preset name (default digits)"),
    config_file: Path | None = typer.Option(None, "--config", help="a config.json instead of a preset"),
    set_: list[str] = typer.Option([], "--set", help="fixed override, e.g. training.duration=60ep (repeatable)"),
    grid: list[str] = typer.Option([], help="grid axis, e.g. noise.rate=0.2,0.4,0.8 (repeatable)"),
    seeds: list[str] = typer.Option([], help="seeds: --seeds 0 1 2 (or 0,1,2)"),
    executor: str | None = typer.Option(None, help="inprocess (default), process, ray or slurm"),
    workers: int | None = typer.Option(None, help="process pool size (default: the CPU cores)"),
    threads: int | None = typer.Option(None, help="threads per process worker (default: cores / workers)"),
    lockstep: bool | None = typer.Option(None, help="train a point's seeds stacked (default: in process only)"),
    address: str | None = typer.Option(None, help="ray: an existing cluster's address (default: start one)"),
    max_points: int | None = typer.Option(None, help="refuse a sweep of more runs (grid points x seeds) than this "
                                          "(default 10000, or max_points in the sweep file)"),
    results: Path | None = typer.Option(None, help="folder holding run directories (default results/)"),
    data: Path | None = typer.Option(None, help="folder holding data sets (default data/)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    quiet: bool = typer.Option(False, help="no progress bar"),
) -> None:
    """Run a grid of overrides x seeds (finished points skipped, interrupted ones resumed); print mean ± std."""
    from sddlab.app.sweep_command import split_positionals
    from sddlab.app.sweep_command import sweep as run_sweep_command

    file, seed_list = split_positionals(([file] if file else []) + list(ctx.args), seeds)
    runner = {"kind": executor, "workers": workers, "threads": threads, "lockstep": lockstep}
    if address is not None:
        runner["address"] = address
    try:
        code = run_sweep_command(file, results=results, data=data, device=device, echo=typer.echo, name=name,
                                 preset=preset, config=config_file, sets=set_, grids=grid, seeds=seed_list,
                                 executor=runner, max_points=max_points, progress=not quiet)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: finished points and levels are kept; run the same command to resume") \
            from None
    raise typer.Exit(code)


def main() -> None:
    """Entry point: bad input ends with one line on stderr and exit code 2; Ctrl-C at any moment with one
    line and exit code 130 (`sddlab.app.interrupt`)."""
    with exit_on_interrupt():
        try:
            app()
        except SddError as error:
            typer.echo(f"sddlab: error: {error}", err=True)
            deaf_from_now()
            sys.exit(2)
        except Interrupted as error:
            interrupted(str(error))
        except SystemExit as done:
            if done.code == 130:  # typer ends a command interrupted by Ctrl-C with a silent exit 130
                interrupted()
            deaf_from_now()  # the command's outcome is final: its exit status, not a kill in teardown
            raise


if __name__ == "__main__":
    main()
