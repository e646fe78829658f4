"""Integrity of run directories: one pass that says what is intact and what is damaged, a checksum
manifest, and moving damaged files aside.

Every file the run store writes gets its sha256 recorded in `manifest.json` just before it replaces
the old one; the entry keeps the new and the previous digest, so after a crash at any point either
version verifies. Files with no recorded checksum are checked for structure only, and a run directory
without a manifest is intact but unverifiable. Run directories are untrusted input: only JSON and
safetensors headers are parsed (each size-capped before it is read), and no link, FIFO or folder is
ever opened where a file should be.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sddlab.config import Config
from sddlab.errors import SddError
from sddlab.file_checks import (
    CONFIG,
    MANIFEST,
    RECORD,
    RECORD_LIMIT,
    check_file,
    kind_problem,
    lexical_kind,
    safetensors_problem,
    unsafe_name,
)
from sddlab.io import file_kind, read_json, write_json

META = "meta.json"
DAMAGED = "damaged"
LEVEL_FILE = re.compile(r"checkpoints/level_(\d{2,})\.safetensors|levels/level_(\d{2,})\.predictions\.safetensors")
__all__ = ["CONFIG", "DAMAGED", "MANIFEST", "RECORD", "RECORD_LIMIT", "Damage", "DamagedRun", "Inspection", "Manifest",
           "check_files", "check_run", "describe", "inspect", "move_aside", "safetensors_problem", "summary"]
Depth = Literal["full", "quick", "records"]


class DamagedRun(SddError):
    """A run directory holds a truncated, altered, missing or unsafe file."""


@dataclass(frozen=True)
class Damage:
    """One damaged (or, with `missing`, absent) file of a run directory: its relative path and why."""

    path: str
    reason: str
    missing: bool = False


class Manifest:
    """`manifest.json`: relative path -> [sha256 of the newest version, of the one before]."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / MANIFEST

    def digests(self) -> dict[str, list[str]]:
        """The recorded digests; raises `DamagedRun` when the manifest itself is unreadable."""
        if not os.path.lexists(self.path):
            return {}
        try:
            entries = read_json(self.path)["sha256"]
            if not all(isinstance(k, str) and isinstance(v, list) for k, v in entries.items()):
                raise TypeError("entries are not lists of digests")
            return entries
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError, OSError) as error:
            raise DamagedRun(f"{self.path} is damaged ({str(error).splitlines()[0] or type(error).__name__})") \
                from None

    def expect(self, name: str, digest: str) -> None:
        """Record `digest` as the newest version of `name`, keeping the current one valid too."""
        entries = self.digests()
        entries[name] = [digest] + [d for d in entries.get(name, [])[:1] if d != digest]
        write_json(self.path, {"format": 1, "sha256": entries})

    def forget(self, names: list[str]) -> None:
        entries = self.digests()
        if any(name in entries for name in names):
            write_json(self.path, {"format": 1, "sha256": {k: v for k, v in entries.items() if k not in names}})


@dataclass
class Inspection:
    """What one pass over a run directory found: the intact config, meta and level records, parsed once,
    and every damaged, unsafe or missing file. `checked`: a manifest was there to check checksums against."""

    run_dir: Path
    damages: list[Damage] = field(default_factory=list)
    config: Config | None = None  # the stored config when it parses (see `config_matches`)
    meta: dict[str, Any] = field(default_factory=dict)
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    checked: bool = False

    @property
    def config_matches(self) -> bool:
        """The stored config parses and its hash is the one in the directory's name."""
        return self.config is not None and self.run_dir.name.endswith(f"-{self.config.short_hash()}")

    def record_damages(self) -> list[Damage]:
        """Damage to what a level table reads: a record (not a missing one) or the manifest."""
        return [d for d in self.damages if d.path == MANIFEST or (RECORD.fullmatch(d.path) and not d.missing)]

    def rows(self) -> list[dict[str, Any]]:
        """The intact records by level; values JSON stores as null (undefined) read as NaN."""
        return [{key: math.nan if value is None else value for key, value in record.items()}
                for _, record in sorted(self.records.items())]

    def warning(self) -> str | None:
        """One line for readers (show, index, notebooks) about a run `sddlab verify` would not pass."""
        if self.damages:
            first, more = self.damages[0], len(self.damages) - 1
            what = "is missing" if first.missing else "is damaged"
            return (f"{self.run_dir} would not pass `sddlab verify`: {first.path} {what} ({first.reason})"
                    + (f" and {more} more" if more else "") + f"; `sddlab verify {self.run_dir}` lists them")
        if not self.checked:
            return (f"{self.run_dir} has no {MANIFEST}: its files cannot be verified (written before checksums, "
                    "or the manifest was removed)")
        return None


def _walk(run_dir: Path) -> dict[str, str]:
    """Relative path -> kind ('file', 'folder', 'link', ...) of everything in the run directory outside
    damaged/, from `lstat`: links are listed, never followed."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(run_dir, onerror=lambda error: None):
        base = Path(root)
        if base == run_dir:
            dirs[:] = [d for d in dirs if d != DAMAGED]
        for name in dirs + files:
            try:
                found[(base / name).relative_to(run_dir).as_posix()] = file_kind(os.lstat(base / name).st_mode)
            except OSError:
                continue
    return found


def _digests(run_dir: Path, kind: str | None) -> tuple[dict[str, list[str]], Damage | None]:
    if kind is None:
        return {}, None
    if kind != "file":
        return {}, Damage(MANIFEST, kind_problem(run_dir, MANIFEST, kind))
    try:
        return Manifest(run_dir).digests(), None
    except DamagedRun:
        return {}, Damage(MANIFEST, "not a readable checksum manifest")


def _wanted(entries: dict[str, str], recorded: list[str], depth: Depth) -> list[str]:
    """The files one pass checks, in a fixed order: config and meta, records, then the rest."""
    records = sorted((name for name in entries if RECORD.fullmatch(name)), key=lambda n: int(RECORD.fullmatch(n)[1]))
    if depth == "records":
        return records
    others = sorted(name for name in entries if name.endswith(".safetensors") and (
        name.startswith(("checkpoints/", "levels/")) or "/" not in name))
    tables = [name for name in ("levels.csv", "levels.parquet") if name in entries]
    return list(dict.fromkeys([CONFIG, META, *records, *others, *tables, *recorded]))


def inspect(run_dir: str | Path, depth: Depth = "full") -> Inspection:
    """One pass over a run directory: what is intact (config, meta, records, parsed once) and what is
    damaged, unsafe or missing; changes nothing.

    `full` checks every file and checksum (what `verify` and `run` do); `quick` skips the checksums of
    checkpoints/ (large) but checks their structure (what readers do); `records` checks the manifest and
    the level records only (what a level table reads)."""
    run_dir = Path(run_dir)
    entries = _walk(run_dir)
    digests, manifest_damage = _digests(run_dir, entries.get(MANIFEST))
    report = Inspection(run_dir, [manifest_damage] if manifest_damage else [], checked=MANIFEST in entries)
    seen = {MANIFEST}
    for name in _wanted(entries, list(digests), depth):
        checksum = depth != "quick" or not name.startswith("checkpoints/")
        problem, data = check_file(run_dir, name, entries.get(name), digests, checksum)
        if name == CONFIG and isinstance(data, Config):
            report.config = data
        if problem:
            report.damages.append(Damage(name, problem))
        elif name == META and isinstance(data, dict):
            report.meta = data
        elif RECORD.fullmatch(name) and isinstance(data, dict):
            report.records[int(RECORD.fullmatch(name)[1])] = data
        seen.add(name)
    if depth == "records":
        return report
    for name, kind in entries.items():  # links, FIFOs and devices anywhere else
        if name not in seen and kind not in ("file", "folder"):
            report.damages.append(Damage(name, kind_problem(run_dir, name, kind)))
    if report.config is not None and not report.config_matches:
        report.damages = [d for d in report.damages if d.path != CONFIG]
        report.damages.insert(0, Damage(CONFIG, f"its hash {report.config.short_hash()} does not match the "
                                                f"directory name {run_dir.name} (edited, or the folder renamed)"))
    report.damages += _missing(report, entries, digests)
    return report


def _missing(report: Inspection, entries: dict[str, str], digests: dict[str, list[str]]) -> list[Damage]:
    """Files a run must hold by what it says of itself: no gap below a stored level, a checkpoint for each
    trained level, and, once meta.json says it finished, every level and every file its manifest lists."""
    known = {d.path for d in report.damages}
    missing: dict[str, str] = {}
    levels = [int(RECORD.fullmatch(name)[1]) for name in entries if RECORD.fullmatch(name)]
    for level in range(max(levels, default=-1)):
        missing[f"levels/level_{level:02d}.json"] = f"level {max(levels)} is stored"
    for level, record in report.records.items():
        if not record.get("diverged"):
            missing[f"checkpoints/level_{level:02d}.safetensors"] = f"the checkpoint of stored level {level}"
    if report.meta.get("finished") is True and report.config is not None:
        diverged = [level for level, record in report.records.items() if record.get("diverged")]
        for level in range(min(diverged, default=report.config.experiment.levels) + 1):
            missing[f"levels/level_{level:02d}.json"] = "meta.json says the run finished"
        for name in digests:
            if not unsafe_name(name):
                missing.setdefault(name, "listed in manifest.json, and meta.json says the run finished")
    return [Damage(name, reason, missing=True) for name, reason in missing.items()
            if name not in entries and name not in known]


def check_run(run_dir: str | Path, records_only: bool = False) -> list[Damage]:
    """Every damaged or missing file of a run directory (empty when intact); changes nothing."""
    return inspect(run_dir, "records" if records_only else "full").damages


def check_files(run_dir: str | Path, names: list[str]) -> list[Damage]:
    """The damaged ones among `names` (paths relative to the run directory, read next); changes nothing."""
    run_dir = Path(run_dir)
    digests, manifest_damage = _digests(run_dir, lexical_kind(run_dir, MANIFEST))
    if manifest_damage:
        return [manifest_damage]
    found = []
    for name in names:
        kind = None if unsafe_name(name) else lexical_kind(run_dir, name)
        problem, _ = check_file(run_dir, name, kind, digests, checksum=True)
        if problem:
            found.append(Damage(name, problem))
    return found


def move_aside(run_dir: Path, damages: list[Damage]) -> tuple[Path, list[str]]:
    """Move damaged files (and the records of levels whose checkpoint or predictions are damaged or missing)
    into damaged/<time>/. Nothing is deleted; returns the folder and what was moved. The names leave the
    manifest (missing ones too, so they are not reported again once the run recomputes them)."""
    names = {d.path for d in damages}
    for damage in damages:  # a level whose checkpoint is lost is recomputed: its record must go too
        match = LEVEL_FILE.fullmatch(damage.path)
        if match:
            names.add(f"levels/level_{match.group(1) or match.group(2)}.json")
    target = run_dir / DAMAGED / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    moved = []
    for name in sorted(names):
        source = run_dir / name
        if unsafe_name(name) or not os.path.lexists(source):
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
    state = "is missing" if first.missing else "is damaged"
    return (f"{run_dir / first.path} {state}: {first.reason}{more}; `sddlab verify {run_dir}` lists them, "
            f"`sddlab run --config {run_dir / CONFIG} --results {run_dir.parent}` moves them into "
            f"{run_dir / DAMAGED}/ and recomputes")


def summary(report: Inspection) -> list[str]:
    """The lines `sddlab verify` prints for one run directory."""
    lines = [f"{'MISSING ' if d.missing else 'DAMAGED '} {report.run_dir / d.path}: {d.reason}" for d in report.damages]
    if not report.checked:
        lines.append(f"UNVERIFIABLE  {report.run_dir}: no {MANIFEST}, so no checksum could be checked (written "
                     "before checksums, or the manifest was removed)")
    return lines or [f"ok       {report.run_dir}"]
