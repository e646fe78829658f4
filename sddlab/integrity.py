"""Integrity of run directories: a checksum manifest, checks that name damaged files, moving them aside.

Every file the run store writes gets its sha256 recorded in `manifest.json` just before it replaces
the old one; the entry keeps the new and the previous digest, so after a crash at any point either
version verifies. Files with no recorded checksum (older runs) are checked for structure only. Run
directories are untrusted input: only JSON and safetensors headers are parsed, and names or links
that lead out of the directory are refused.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sddlab.config import Config
from sddlab.errors import SddError
from sddlab.io import sha256_file, write_json

MANIFEST = "manifest.json"
DAMAGED = "damaged"
RECORD_NAME = re.compile(r"level_(\d{2,})\.json")


class DamagedRun(SddError):
    """A run directory holds a truncated, altered or unsafe file."""


@dataclass(frozen=True)
class Damage:
    """One damaged file of a run directory: its path relative to the directory and why."""

    path: str
    reason: str


def inside(run_dir: Path, path: Path) -> bool:
    """True when `path` (links followed) lies inside `run_dir`."""
    try:
        Path(path).resolve().relative_to(Path(run_dir).resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


class Manifest:
    """`manifest.json`: relative path -> [sha256 of the newest version, of the one before]."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / MANIFEST

    def digests(self) -> dict[str, list[str]]:
        """The recorded digests; raises `DamagedRun` when the manifest itself is unreadable."""
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            entries = data["sha256"]
            if not all(isinstance(k, str) and isinstance(v, list) for k, v in entries.items()):
                raise TypeError("entries are not lists of digests")
            return entries
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as error:
            raise DamagedRun(f"{self.path} is damaged ({type(error).__name__})") from None

    def expect(self, name: str, digest: str) -> None:
        """Record `digest` as the newest version of `name`, keeping the current one valid too."""
        entries = self.digests()
        entries[name] = [digest] + [d for d in entries.get(name, [])[:1] if d != digest]
        write_json(self.path, {"format": 1, "sha256": entries})

    def forget(self, names: list[str]) -> None:
        entries = self.digests()
        if any(name in entries for name in names):
            write_json(self.path, {"format": 1, "sha256": {k: v for k, v in entries.items() if k not in names}})


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is structurally broken (header, sizes), or None; reads the header only."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"truncated ({size} bytes)"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return f"truncated (header of {length} bytes in a file of {size})"
        try:
            header = json.loads(handle.read(length))
            end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "unreadable header"
    if size != 8 + length + end:
        return f"truncated or padded ({size} bytes, {8 + length + end} expected)"
    return None


def _json_problem(path: Path, level: int | None = None) -> str | None:
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return "not valid JSON (truncated or altered)"
    if not isinstance(data, dict):
        return "not a JSON object"
    if level is not None and data.get("level") != level:
        return f"its 'level' is {data.get('level')!r}, not {level}"
    return None


def _config_problem(path: Path) -> str | None:
    try:
        Config.from_json(path.read_text())
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        return f"not a valid config ({str(error).splitlines()[0]})"
    return None


def _escaping_links(run_dir: Path) -> list[Damage]:
    found = []
    for root, dirs, files in os.walk(run_dir):
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink() and not inside(run_dir, path):
                found.append(Damage(path.relative_to(run_dir).as_posix(), "a link out of the run directory (unsafe)"))
        dirs[:] = [d for d in dirs if d != DAMAGED and not (Path(root) / d).is_symlink()]
    return found


def _structure_problem(path: Path, name: str) -> str | None:
    """What is wrong with the file's structure, by its kind (config, JSON, record, safetensors)."""
    if name == "config.json":
        return _config_problem(path)
    match = re.fullmatch(r"levels/level_(\d{2,})\.json", name)
    if match:
        return _json_problem(path, int(match.group(1)))
    if name.endswith(".json"):
        return _json_problem(path)
    if name.endswith(".safetensors"):
        return safetensors_problem(path)
    return None


def _file_problem(run_dir: Path, name: str, entries: dict[str, list[str]]) -> str | None:
    path = run_dir / name
    if Path(name).is_absolute() or ".." in Path(name).parts or (path.is_symlink() and not inside(run_dir, path)):
        return "a name or link that leads out of the run directory (unsafe)"
    if not path.is_file():
        return None
    if name in entries and sha256_file(path) not in entries[name]:
        return "checksum mismatch (truncated or altered)"
    return _structure_problem(path, name)


def check_files(run_dir: str | Path, names: list[str]) -> list[Damage]:
    """The damaged ones among `names` (paths relative to the run directory); changes nothing."""
    run_dir = Path(run_dir)
    try:
        entries = Manifest(run_dir).digests()
    except DamagedRun:
        return [Damage(MANIFEST, "not a readable checksum manifest")]
    found = [Damage(name, problem) for name in names if (problem := _file_problem(run_dir, name, entries))]
    return found


def record_files(run_dir: Path) -> dict[int, Path]:
    """Level number -> record file, for the names `levels/level_NN.json`."""
    files = {}
    for path in sorted((Path(run_dir) / "levels").glob("level_*.json")):
        match = RECORD_NAME.fullmatch(path.name)
        if match:
            files[int(match.group(1))] = path
    return files


def check_run(run_dir: str | Path, records_only: bool = False) -> list[Damage]:
    """Every damaged file of a run directory (empty when intact); changes nothing.

    `records_only` checks just what a level table reads (the manifest and the level records).
    """
    run_dir = Path(run_dir)
    records = record_files(run_dir)
    names = [f"levels/{path.name}" for path in records.values()]
    try:
        recorded = list(Manifest(run_dir).digests())
    except DamagedRun:
        recorded = []
    if records_only:
        return check_files(run_dir, names)
    names += ["config.json", "meta.json"] + recorded
    names += [f"checkpoints/{path.name}" for path in sorted((run_dir / "checkpoints").glob("*.safetensors"))]
    found = _escaping_links(run_dir)
    seen = {d.path for d in found}
    for damage in check_files(run_dir, list(dict.fromkeys(names))):
        if damage.path not in seen:
            found.append(damage)
            seen.add(damage.path)
    for level, path in records.items():
        checkpoint = f"checkpoints/level_{level:02d}.safetensors"
        if not (run_dir / checkpoint).exists() and checkpoint not in seen and not _is_diverged(path):
            found.append(Damage(checkpoint, f"missing for finished level {level}"))
    return found


def _is_diverged(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()).get("diverged"))
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False


def move_aside(run_dir: Path, damages: list[Damage]) -> tuple[Path, list[str]]:
    """Move damaged files (and the records of levels whose checkpoint is damaged) into damaged/<time>/.

    Nothing is deleted; returns the folder and what was moved. The moved names leave the manifest.
    """
    names = {d.path for d in damages}
    for damage in damages:  # a level whose checkpoint is lost is recomputed: its record must go too
        match = re.fullmatch(r"checkpoints/level_(\d{2,})\.safetensors", damage.path)
        if match:
            names.add(f"levels/level_{match.group(1)}.json")
    target = run_dir / DAMAGED / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    moved = []
    for name in sorted(names):
        source = run_dir / name
        if ".." in Path(name).parts or Path(name).is_absolute() or not (source.exists() or source.is_symlink()):
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)
        moved.append(name)
    if MANIFEST not in names:
        Manifest(run_dir).forget(sorted(names))
    return target, moved


def describe(run_dir: Path, damages: list[Damage]) -> str:
    """One line naming the first damaged file and what to do about it."""
    first = damages[0]
    more = f" and {len(damages) - 1} more" if len(damages) > 1 else ""
    return (f"{run_dir / first.path} is damaged: {first.reason}{more}; `sddlab verify {run_dir}` lists them, "
            f"`sddlab run --config {run_dir / 'config.json'} --results {run_dir.parent}` moves them into "
            f"{run_dir / DAMAGED}/ and recomputes")


def summary(run_dir: Path, damages: list[Damage]) -> list[str]:
    """The lines `sddlab verify` prints for one run directory."""
    if not damages:
        return [f"ok       {run_dir}"]
    return [f"DAMAGED  {run_dir / d.path}: {d.reason}" for d in damages]

