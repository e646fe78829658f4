"""Run directories: atomic writes, safetensors checkpoints, per-level records, a results index.

Every file written here has its checksum recorded in the run's manifest (`sddlab.integrity`).
Opening a run directory checks it once (`sddlab.integrity.inspect`) and the store acts on what that one
pass found: a writer moves damaged files aside under the lock, a reader gets the intact records and a
one-line warning about anything `sddlab verify` would not pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from filelock import FileLock, Timeout

from sddlab.config import Config
from sddlab.errors import SddError
from sddlab.integrity import (
    RECORD_LIMIT,
    Damage,
    DamagedRun,
    Inspection,
    Manifest,
    check_files,
    describe,
    inspect,
    move_aside,
)
from sddlab.io import (
    atomic_write_text,
    current_umask,
    load_metadata,
    load_tensors,
    read_json,
    save_tensors,
    write_json,
    write_parquet,
)

CONFIG_FILE = "config.json"
META_FILE = "meta.json"
TABLE_CSV = "levels.csv"
TABLE_PARQUET = "levels.parquet"
EXAMPLES_FILE = "examples.safetensors"  # the run's per-example labels, written once


def partial_checkpoint(stream: str) -> str:
    """The checkpoint name of a span's mid-level state (model and optimizer), by the span's stream."""
    return f"partial-{stream}"


class _RunLock(FileLock):
    """A folder's file lock; entered while another process holds it, it says so, then waits."""

    why = "another process is writing it"

    def __enter__(self) -> _RunLock:
        try:
            self.acquire(timeout=0)
        except Timeout:
            print(f"sddlab: {Path(self.lock_file).parent} is busy ({self.why}); waiting for it to finish",
                  file=sys.stderr, flush=True)
            self.acquire()
        return self


def folder_lock(folder: Path, why: str, timeout: float = -1) -> FileLock:
    """One writer per folder (a run directory, a sweep's report): a second one says it is busy, then waits."""
    lock = _RunLock(str(Path(folder) / ".lock"), timeout=timeout)
    lock.why = why
    return lock


class RunStore:
    """One run directory: `config.json`, `meta.json`, `levels/level_NN.{json,safetensors}`, tables."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        if not os.path.lexists(self.dir / CONFIG_FILE):
            raise SddError(f"{self.dir} is not a run directory (no {CONFIG_FILE})")
        self.manifest = Manifest(self.dir)

    def _checked(self, name: str) -> Callable[[str], None]:
        """The hook that records a file's checksum in the manifest just before the file replaces the old one."""
        return lambda digest: self.manifest.expect(name, digest)

    def _intact(self, relative: str) -> Path:
        """The file's path once its kind (no link), checksum and structure verify; else a one-line `DamagedRun`."""
        damages = check_files(self.dir, [relative])
        if damages:
            raise DamagedRun(describe(self.dir, damages))
        return self.dir / relative

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open_or_create(cls, results: Path, config: Config, meta: dict[str, Any]) -> RunStore:
        """The run directory of `config`, created atomically (config + meta in place before it appears), then
        checked once under its lock and repaired: what that pass found damaged is moved aside."""
        results = Path(results)
        run_dir = results / config.run_name()
        if not os.path.lexists(run_dir / CONFIG_FILE):
            results.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=results, prefix=f".{run_dir.name}."))
            staging.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide the run from colleagues
            try:
                staged = Manifest(staging)
                atomic_write_text(staging / CONFIG_FILE, config.to_json() + "\n",
                                  lambda digest: staged.expect(CONFIG_FILE, digest))
                write_json(staging / META_FILE, meta, before_rename=lambda digest: staged.expect(META_FILE, digest))
                with contextlib.suppress(OSError):  # another process created it first
                    staging.rename(run_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        store = cls(run_dir)
        with store.lock():
            store._act(inspect(store.dir), config, meta)
        return store

    def read(self) -> Inspection:
        """A reader's one pass (every file, the large checkpoints by structure only): the intact config and
        records, and `warning()` for a run `sddlab verify` would not pass; a damaged record is a one-line
        `DamagedRun` (its level table cannot be shown honestly)."""
        report = inspect(self.dir, "quick")
        if report.record_damages():
            raise DamagedRun(describe(self.dir, report.record_damages()))
        return report

    def lock(self, timeout: float = -1) -> FileLock:
        """One writer per run directory; a second process says the run is busy, then waits here."""
        return folder_lock(self.dir, "another process is writing it", timeout)

    # -- acting on what the check found -----------------------------------------------------------
    def repair(self) -> list[Damage]:
        """Under the lock: one full check, then what it found acted on (see `_act`); returns what was damaged
        or missing. The levels whose record went are recomputed by the next run."""
        report = inspect(self.dir)
        self._act(report)
        return report.damages

    def _act(self, report: Inspection, config: Config | None = None, meta: dict[str, Any] | None = None) -> None:
        """Refuse a directory holding another config; drop stale temporary files; move damaged files aside
        (never deleting) and write config.json and meta.json again from what the caller knows."""
        stored = report.config
        if config is not None and stored is not None and stored.short_hash() != config.short_hash():
            raise SddError(f"{self.dir} holds a different config (hash {stored.short_hash()})")
        for root, _, files in os.walk(self.dir):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp") and os.path.isfile(Path(root) / name):
                    (Path(root) / name).unlink()
        if not report.damages:
            return
        head = config or (stored if report.config_matches else None)
        if head is None and any(d.path == CONFIG_FILE for d in report.damages):
            raise DamagedRun(describe(self.dir, [d for d in report.damages if d.path == CONFIG_FILE]))
        folder, moved = move_aside(self.dir, report.damages)
        for name in moved:
            print(f"sddlab: moved damaged {name} to {folder}/ (it will be recomputed)", file=sys.stderr, flush=True)
        for damage in (d for d in report.damages if d.missing):
            print(f"sddlab: {damage.path} is missing ({damage.reason}); it will be recomputed", file=sys.stderr,
                  flush=True)
        if not os.path.lexists(self.dir / CONFIG_FILE):
            atomic_write_text(self.dir / CONFIG_FILE, head.to_json() + "\n", self._checked(CONFIG_FILE))
        if meta is not None and not os.path.lexists(self.dir / META_FILE):
            write_json(self.dir / META_FILE, meta, before_rename=self._checked(META_FILE))
        self.write_tables()

    # -- config and meta ------------------------------------------------------------------------
    def config(self) -> Config:
        """The stored config; a config.json that is not a valid config (or not a file) is a one-line error."""
        path = self.dir / CONFIG_FILE
        try:
            return Config(**read_json(path, RECORD_LIMIT))
        except (ValueError, TypeError, UnicodeDecodeError, OSError) as error:
            raise DamagedRun(f"{path} is not a valid sddlab config ({str(error).splitlines()[0]}); "
                             "restore it or remove the run directory") from None

    def meta(self) -> dict[str, Any]:
        path = self.dir / META_FILE
        if not os.path.lexists(path):
            return {}
        try:
            meta = read_json(path, RECORD_LIMIT)
        except (ValueError, UnicodeDecodeError, OSError):
            meta = None
        if not isinstance(meta, dict):
            raise DamagedRun(describe(self.dir, [Damage(META_FILE, "not a readable JSON object")]))
        return meta

    def update_meta(self, **values: Any) -> None:
        write_json(self.dir / META_FILE, {**self.meta(), **values}, before_rename=self._checked(META_FILE))

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_path(self, name: str) -> Path:
        return self.dir / "checkpoints" / f"{name}.safetensors"

    def has_checkpoint(self, name: str) -> bool:
        return self.checkpoint_path(name).exists()

    def save_checkpoint(self, name: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None):
        save_tensors(self.checkpoint_path(name), tensors, metadata, self._checked(f"checkpoints/{name}.safetensors"))

    def load_checkpoint(self, name: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        return load_tensors(self._intact(f"checkpoints/{name}.safetensors"), device)

    def checkpoint_metadata(self, name: str) -> dict[str, str]:
        return load_metadata(self._intact(f"checkpoints/{name}.safetensors"))

    def remove_checkpoint(self, name: str) -> None:
        self.manifest.forget([f"checkpoints/{name}.safetensors"])
        self.checkpoint_path(name).unlink(missing_ok=True)

    def save_level_state(self, level: int, mask: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> None:
        """A level's mask and final weights in one checkpoint, the mask's order kept in its metadata."""
        tensors = {f"mask/{k}": v for k, v in mask.items()} | {f"weights/{k}": v for k, v in weights.items()}
        self.save_checkpoint(f"level_{level:02d}", tensors, {"mask_order": json.dumps(list(mask))})

    def load_level_state(
        self, level: int, device: str | torch.device = "cpu"
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(mask, weights) of a finished level, the mask in its saved order.

        safetensors returns keys in no fixed order, and the order of a mask decides random scores,
        tie-breaking and summation, so a resumed run would otherwise differ from an uninterrupted one.
        """
        name = f"level_{level:02d}"
        order = json.loads(self.checkpoint_metadata(name)["mask_order"])
        tensors = self.load_checkpoint(name, device)
        mask = {key: tensors[f"mask/{key}"].bool() for key in order}
        weights = {k.removeprefix("weights/"): v for k, v in tensors.items() if k.startswith("weights/")}
        return mask, weights

    # -- per-example predictions ----------------------------------------------------------------
    def save_predictions(self, level: int, predictions: dict[str, torch.Tensor]) -> None:
        """A level's predicted class per example (uint8 up to 256 classes): a few kB a level."""
        self._save_small(f"levels/level_{level:02d}.predictions.safetensors", predictions)

    def save_examples(self, labels: dict[str, torch.Tensor]) -> None:
        """The run's per-example labels (noisy, clean, which are noisy), once: what predictions are read against."""
        self._save_small(EXAMPLES_FILE, labels)

    def has_examples(self) -> bool:
        return (self.dir / EXAMPLES_FILE).exists()

    def _save_small(self, relative: str, tensors: dict[str, torch.Tensor]) -> None:
        def small(t: torch.Tensor) -> bool:
            return t.dtype != torch.bool and (t.numel() == 0 or 0 <= int(t.min()) <= int(t.max()) < 256)

        compact = {name: (t.to(torch.uint8) if small(t) else t).detach().cpu().contiguous()
                   for name, t in tensors.items()}
        save_tensors(self.dir / relative, compact, None, self._checked(relative))

    def load_predictions(self, level: int) -> dict[str, torch.Tensor]:
        """A level's stored predictions as int64 tensors (a one-line `DamagedRun` when damaged)."""
        return self._load_small(f"levels/level_{level:02d}.predictions.safetensors")

    def load_examples(self) -> dict[str, torch.Tensor]:
        return self._load_small(EXAMPLES_FILE)

    def _load_small(self, relative: str) -> dict[str, torch.Tensor]:
        tensors = load_tensors(self._intact(relative))
        return {name: t if t.dtype == torch.bool else t.long() for name, t in tensors.items()}

    # -- level records --------------------------------------------------------------------------
    def _record_path(self, level: int) -> Path:
        return self.dir / "levels" / f"level_{level:02d}.json"

    def has_level(self, level: int) -> bool:
        return self._record_path(level).exists()

    def save_level(self, level: int, record: dict[str, Any]) -> None:
        """Write the record (the level's 'done' marker, so its checkpoints go first) and the tables."""
        write_json(self._record_path(level), record, before_rename=self._checked(f"levels/level_{level:02d}.json"))
        self.write_tables()

    def records(self) -> list[dict[str, Any]]:
        """Every finished level's record, by level; values JSON stores as null (undefined) read as NaN.

        A damaged record (checksum, JSON, a link, not a file) is a one-line `DamagedRun`."""
        report = inspect(self.dir, "records")
        if report.record_damages():
            raise DamagedRun(describe(self.dir, report.record_damages()))
        return report.rows()

    def table(self) -> pd.DataFrame:
        """The level table of a finished or partial run, one row per finished level."""
        return pd.DataFrame(self.records())

    def write_tables(self) -> None:
        table = self.table()
        atomic_write_text(self.dir / TABLE_CSV, table.to_csv(index=False), self._checked(TABLE_CSV))
        write_parquet(self.dir / TABLE_PARQUET, table, self._checked(TABLE_PARQUET))
