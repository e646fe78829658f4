"""The command line's teaching commands: `sddlab app` (the explorer as a web app) and `sddlab lab release`."""

from __future__ import annotations

from pathlib import Path

import typer

from sddlab.app.notebooks import parse_parameters

lab_app = typer.Typer(no_args_is_help=True, help="The graded course lab (nbgrader): see docs/teaching.md.")
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def app(
    ctx: typer.Context,
    port: int | None = typer.Option(None, help="port on 127.0.0.1 (default 8866, else a free one)"),
    token: str | None = typer.Option(None, help="the URL's access token (default: a random one)"),
    browser: bool = typer.Option(True, help="open the app in the web browser"),
) -> None:
    """Serve the explorer as a web app (Voilà: code hidden): sddlab app [-p KEY VALUE ...], e.g. -p preset tiny.
    Runs go to ./results of this folder, or $SDDLAB_RESULTS."""
    from sddlab.app.voila_app import serve

    raise typer.Exit(serve(parse_parameters(ctx.args), port=port, token=token, open_browser=browser, echo=typer.echo))


@lab_app.command(context_settings=EXTRA)
def release(
    ctx: typer.Context,
    course: Path = typer.Argument(..., help="the course folder (created if missing); nbgrader's commands run in it"),
    assignment: str = typer.Option("sdd-lab", help="the assignment's name"),
    overwrite: bool = typer.Option(False, help="replace a source notebook edited or released with other parameters"),
) -> None:
    """Write the lab's instructor source and, through nbgrader, its student version: sddlab lab release COURSE
    [-p KEY VALUE ...] (the class's lab parameters, e.g. -p epochs 20)."""
    from sddlab.app.lab_release import release as release_lab

    done = release_lab(course, parse_parameters(ctx.args), assignment=assignment, overwrite=overwrite)
    typer.echo(f"instructor source: {done.source}")
    typer.echo(f"student version:   {done.student}  (hand out the folder {done.student.parent})")
    typer.echo(f"then, in {done.course}: nbgrader collect {assignment} (or zip_collect), nbgrader autograde "
               f"{assignment}, nbgrader generate_feedback {assignment}")
