"""`sddlab report`: a results page in the repository (docs/results/NAME/) from run directories or a sweep folder."""

from __future__ import annotations

from pathlib import Path

import typer

from sddlab.app.results_page import write_page


def report(
    inputs: list[Path] = typer.Argument(..., help="run directories, folders of them, or a sweep folder "
                                        "(results/sweeps/NAME)"),
    name: str | None = typer.Option(None, help="the page's folder name (default: the sweep's or the preset's name)"),
    out: Path = typer.Option(Path("docs/results"), help="where the page's folder goes"),
    png: bool = typer.Option(True, help="draw the curve as a PNG (kaleido and Chromium)"),
) -> None:
    """Write a results page: per level mean ± std over seeds, the phases and the margin over dense, CSVs, the
    curve and what made it."""
    page = write_page(list(inputs), name, out.expanduser(), png)  # '~/x' as a shell would read it
    for line in page.diverged:
        typer.echo(line, err=True)
    for label, phases in page.reports.items():
        typer.echo(f"{label}: {phases.summary}")
    typer.echo(f"page: {page.folder / 'README.md'} ({len(page.files)} files)")
