"""`sddlab tiny-imagenet`: the official archive reorganised into the class folders the loader reads."""

from __future__ import annotations

from pathlib import Path

import typer

from sddlab.data.tinyimagenet import reorganise_tiny_imagenet
from sddlab.errors import SddError


def tiny_imagenet(
    archive: Path = typer.Argument(..., help="the unzipped tiny-imagenet-200 folder (train/, val/, wnids.txt)"),
    out: Path = typer.Option(Path("data/tiny-imagenet"), help="where the class-folder layout goes"),
) -> None:
    """Reorganise the official Tiny ImageNet archive into the class folders the loader reads."""
    if not (archive / "train").is_dir():
        raise SddError(f"archive={str(archive)!r} is not allowed: the unzipped tiny-imagenet-200 folder with train/")
    counts = reorganise_tiny_imagenet(archive, out)
    typer.echo(", ".join(f"{split}: {count} images" for split, count in counts.items()) + f" -> {out}")
