"""`sddlab diagram`: the phase diagram of a sweep over one field, with its ridge, calibration and remaining-weights
tables, written with every figure (HTML, PNG, PDF) into the sweep's folder `<results>/sweeps/NAME/diagram/`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import typer

from sddlab.analyses.calibration import with_calibration
from sddlab.app.sweep_command import check_where
from sddlab.assignments import parse_assignment
from sddlab.collect import index
from sddlab.diagram import (
    HOLDOUT,
    LAPTOP_VALUES,
    WIDTH_FIELDS,
    PhaseDiagram,
    calibration_table,
    diagram_sweep,
    phase_diagram,
    remaining_table,
)
from sddlab.errors import ConfigError, SddError, shown
from sddlab.figures.calibration import calibration_figure
from sddlab.figures.diagram import diagram_figure, remaining_figure
from sddlab.figures.export import FORMATS, export_figure
from sddlab.io import atomic_write_text
from sddlab.sweeps import SweepSpec, load_sweep, parse_grid, run_sweep

SWEEP_FILE = "sweep.json"


def _one_axis(grid: dict[str, Any], where: str) -> str:
    if len(grid) != 1:
        raise SddError(f"{where} sweeps {len(grid)} fields ({', '.join(grid) or 'none'}): a diagram needs exactly one "
                       "grid axis")
    return next(iter(grid))


def build_spec(sweep: str | None, *, preset: str, field: str, values: str | None, seeds: str, holdout: float,
               sets: list[str], executor: dict[str, Any]) -> SweepSpec | Path:
    """The sweep to run (from a TOML file or the flags), or a sweep folder to read back; checked before any work."""
    runner = {key: value for key, value in executor.items() if value is not None}
    if sweep is not None:
        path = Path(sweep)
        if (path / SWEEP_FILE).is_file():
            return path
        if path.suffix != ".toml":
            raise SddError(f"SWEEP={sweep!r} is not allowed: a sweep file (.toml) or a sweep folder "
                           f"(results/sweeps/NAME, with {SWEEP_FILE})")
        spec = load_sweep(path, **runner)
        _one_axis(spec.grid, f"sweep file {sweep}")
        return spec
    try:
        seed_list = [int(part) for part in seeds.split(",") if part.strip()]
    except ValueError:
        raise SddError(f"--seeds={shown(seeds)} is not allowed: comma-separated integers, e.g. 0,1,2") from None
    grid = parse_grid([f"{field}={values}"], "--values") if values is not None else {field: None}
    overrides = dict(parse_assignment(text) for text in sets)
    return diagram_sweep(preset, field, grid[field], seed_list, overrides=overrides, holdout=holdout, **runner)


def read_back(folder: Path) -> tuple[pd.DataFrame, str, list[Any], Path]:
    """A sweep folder's level table, its field, the field's values in order, and the folder."""
    try:
        report = json.loads((folder / SWEEP_FILE).read_text())
        points, grid = list(report["points"]), dict(report["grid"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError("SWEEP", str(folder), f"a readable {SWEEP_FILE} with its points and grid ({error})") from None
    field = _one_axis(grid, f"sweep folder {folder}")
    results = folder.parent.parent
    present = [results / name for name in points if (results / name / "config.json").exists()]
    if not present:
        raise SddError(f"sweep folder {folder} has no run directory under {results} yet: run its sweep first")
    return index(present), field, list(grid[field]), folder


def export(fig: go.Figure, stem: Path, formats: list[str], echo: Callable[..., None]) -> list[Path]:
    """Write `fig` as HTML, then each static format; when static export cannot run here it is said once and
    dropped from `formats` for the figures that follow."""
    written = []
    for kind in sorted(formats, key=lambda kind: kind != "html"):
        try:
            written.append(export_figure(fig, stem.with_suffix(f".{kind}"), width=1100,
                                         height=fig.layout.height or 650))
        except SddError as error:
            echo(f"sddlab: {error}", err=True)
            formats[:] = [kind for kind in formats if kind == "html"]
            break
    return written


def _pm(frame: pd.DataFrame, column: str, scale: float = 1.0, digits: int = 2) -> list[str]:
    return [f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}" if pd.notna(m) else "-"
            for m, s in zip(frame[f"{column}_mean"], frame[f"{column}_std"], strict=True)]


def ridge_text(diagram: PhaseDiagram) -> str:
    """The ridges as a terminal table: sparsity (%) of the critical minimum and the sweet peak, mean ± std."""
    r = diagram.ridges
    shown = pd.DataFrame({diagram.field: r["column"], "seeds (double descent)": [
        f"{n} ({d})" for n, d in zip(r["seeds"], r["double_descent_seeds"], strict=True)],
        "dense acc": _pm(r, "dense_acc", digits=3), "critical sparsity %": _pm(r, "critical_sparsity", 100),
        "critical acc": _pm(r, "critical_acc", digits=3), "sweet sparsity %": _pm(r, "sweet_sparsity", 100),
        "sweet acc": _pm(r, "sweet_acc", digits=3)})
    return shown.to_string(index=False)


def calibration_text(table: pd.DataFrame, field: str) -> str:
    shown = pd.DataFrame({field: table["column"], "seeds": table["seeds"]})
    for key, digits in (("ece", 3), ("ece_adaptive", 3), ("nll", 3), ("confidence", 3), ("acc", 3)):
        shown[f"dense {key}"] = _pm(table, f"dense_{key}", digits=digits)
        shown[f"sweet {key}"] = _pm(table, f"sweet_{key}", digits=digits)
    shown["sweet ECE lower"] = [f"{k}/{n}" for k, n in zip(table["sweet_lower_ece_seeds"], table["seeds"], strict=True)]
    return shown.to_string(index=False)


def remaining_text(table: pd.DataFrame, field: str) -> str:
    shown = pd.DataFrame({field: table["column"], "start weights": table["start_weights"].map("{:.0f}".format),
                          "best level: weights left": _pm(table, "best_remaining", digits=0),
                          "best sparsity %": _pm(table, "best_sparsity", 100),
                          "sweet peak: weights left": _pm(table, "sweet_remaining", digits=0),
                          "noisy-label pick: weights left": _pm(table, "pick_remaining", digits=0)})
    return shown.to_string(index=False)


def diagram(
    sweep: str | None = typer.Argument(None, help="a sweep file (.toml, one grid axis) or a sweep folder "
                                       "(results/sweeps/NAME) to read back; none: the sweep the options describe"),
    preset: str = typer.Option("digits", help="preset of every point"),
    field: str = typer.Option("noise.rate", help=f"the swept field, e.g. {', '.join(LAPTOP_VALUES)}"),
    values: str | None = typer.Option(None, help="its values: 0,0.2,0.4 or a JSON list ('[[32],[64]]'); "
                                      "default: the field's laptop values"),
    seeds: str = typer.Option("0,1,2", help="seeds, e.g. 0,1,2 (trained in lockstep where the model allows)"),
    holdout: float = typer.Option(HOLDOUT, help="share of the noisy training set held out (data.holdout)"),
    set_: list[str] = typer.Option([], "--set", help="override for every point, e.g. training.duration=60ep"),
    executor: str | None = typer.Option(None, help="inprocess (default), process, ray or slurm"),
    workers: int | None = typer.Option(None, help="process pool size (default: the CPU cores)"),
    formats: str = typer.Option("html,png,pdf", help=f"figure formats among {', '.join(FORMATS)}"),
    results: Path | None = typer.Option(None, help="folder holding run directories (default results/)"),
    data: Path | None = typer.Option(None, help="folder holding data sets (default data/)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Run (or read back) a sweep over one field; print the ridges, calibration and remaining-weight tables and
    write the phase diagram and its figures into the sweep's folder."""
    kinds = [part.strip().lower() for part in formats.split(",") if part.strip()]
    if not kinds or any(kind not in FORMATS for kind in kinds):
        raise SddError(f"--formats={formats!r} is not allowed: a comma list of {', '.join(FORMATS)}")
    target = build_spec(sweep, preset=preset, field=field, values=values, seeds=seeds, holdout=holdout, sets=set_,
                        executor={"kind": executor, "workers": workers})
    if isinstance(target, Path):
        table, field, order, folder = read_back(target)
    else:
        check_where(results, device)
        result = run_sweep(target, results, data_dir=data, device=device, progress=not quiet)
        for name, reason in result.failed.items():
            typer.echo(f"failed: {name}: {reason}", err=True)
        if result.table.empty:
            raise typer.Exit(1)
        field = next(iter(target.grid))
        table, order, folder = result.table, list(target.grid[field]), result.directory
    built = phase_diagram(with_calibration(table, progress=not quiet), field, order)
    out = folder / "diagram"
    out.mkdir(parents=True, exist_ok=True)
    tables = {"ridges": built.ridges, "runs": built.runs, "calibration": calibration_table(built)}
    figures = {"diagram": diagram_figure(built),
               "calibration": calibration_figure(built.table, by="column", label=field, title=f"Calibration "
                                                 f"along the sparsity axis, by {field} (mean over seeds)")}
    if field in WIDTH_FIELDS:
        tables["remaining"] = remaining_table(built)
        figures["remaining"] = remaining_figure(tables["remaining"], field)
    for name, frame in tables.items():
        atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
    typer.echo(f"ridges (sparsity of the critical minimum and the sweet peak over seeds with double descent):\n"
               f"{ridge_text(built)}")
    typer.echo(f"calibration at the dense level and the sweet peak:\n{calibration_text(tables['calibration'], field)}")
    if "remaining" in tables:
        typer.echo(f"weights left against the starting width:\n{remaining_text(tables['remaining'], field)}")
    written = [path for name, fig in figures.items() for path in export(fig, out / name, kinds, typer.echo)]
    typer.echo(f"diagram: {len(written)} figure files and {len(tables)} tables in {out}")
