"""After a failed data set download in the explorer: the empty folders it left, and the data set's own hint."""

from __future__ import annotations

from pathlib import Path


def folders_under(root: Path) -> set[Path]:
    """Every folder below `root` (none when it does not exist): the before-picture for `remove_new_empty`."""
    return {path for path in root.rglob("*") if path.is_dir()} if root.is_dir() else set()


def remove_new_empty(root: Path, before: set[Path]) -> None:
    """Remove the empty folders a failed download left under `root` (never one that existed before)."""
    for path in sorted(folders_under(root) - before, key=lambda p: len(p.parts), reverse=True):
        if not any(path.iterdir()):
            path.rmdir()


def download_hint(message: str) -> str:
    """The data set's own hint without the downloader's internals ('(download failed: ...)')."""
    return message.split(" (download", 1)[0].split(" (downloads are off", 1)[0]
