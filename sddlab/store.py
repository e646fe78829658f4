"""Run directories: atomic writes, safetensors checkpoints, per-level records, a results index.

Every file written here has its checksum recorded in the run's manifest (`sddlab.integrity`);
reading a level table checks the records first, and `repair` moves damaged files aside under the lock.
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
from sddlab.errors import ConfigError, SddError
from sddlab.integrity import (
    Damage,
    DamagedRun,
    Manifest,
    check_files,
    check_run,
    describe,
    inside,
    move_aside,
    record_files,
)
from sddlab.io import (
    atomic_write_text,
    load_metadata,
    load_tensors,
    read_json,
    read_rows,
    save_tensors,
    write_json,
    write_parquet,
)

CONFIG_FILE = "config.json"
META_FILE = "meta.json"
TABLE_CSV = "levels.csv"
TABLE_PARQUET = "levels.parquet"


def check_writable(results: Path) -> None:
    """Fail early, naming the field, when the results folder cannot be created or written."""
    results = Path(results)
    probe_root = results
    while not probe_root.exists():
        probe_root = probe_root.parent
    if not probe_root.is_dir() or not os.access(probe_root, os.W_OK | os.X_OK):
        raise ConfigError("results", str(results), "a folder this user can create and write")


class _RunLock(FileLock):
    """The run directory's file lock; entered while another process holds it, it says so, then waits."""

    def __enter__(self) -> _RunLock:
        try:
            self.acquire(timeout=0)
        except Timeout:
            print(f"sddlab: {Path(self.lock_file).parent} is busy (another process is writing it); waiting for "
                  "it to finish", file=sys.stderr, flush=True)
            self.acquire()
        return self


class RunStore:
    """One run directory: `config.json`, `meta.json`, `levels/level_NN.{json,safetensors}`, tables."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        if not (self.dir / CONFIG_FILE).exists():
            raise SddError(f"{self.dir} is not a run directory (no {CONFIG_FILE})")
        self.manifest = Manifest(self.dir)

    def _checked(self, name: str) -> Callable[[str], None]:
        """The hook that records a file's checksum in the manifest just before the file replaces the old one."""
        return lambda digest: self.manifest.expect(name, digest)

    def _inside(self, path: Path) -> Path:
        """`path`, refused when it (or a link on the way) leads out of the run directory."""
        if not inside(self.dir, path):
            raise DamagedRun(f"{path} leads out of the run directory {self.dir} (a link or '..'): refusing "
                             "to read it; remove the link")
        return path

    # -- creation -------------------------------------------------------------------------------
    @classmethod
    def open_or_create(cls, results: Path, config: Config, meta: dict[str, Any]) -> RunStore:
        """The run directory of `config`, created atomically (config + meta in place before it appears)."""
        results = Path(results)
        run_dir = results / config.run_name()
        if not (run_dir / CONFIG_FILE).exists():
            results.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=results, prefix=f".{run_dir.name}."))
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
        store._replace_damaged_head(config, meta)
        stored = store.config()
        if stored.short_hash() != config.short_hash():
            raise SddError(f"{run_dir} holds a different config (hash {stored.short_hash()})")
        return store

    def _damaged_head(self) -> list[Damage]:
        """A damaged meta.json, or a config.json that is no valid config (a valid other one is refused later)."""
        damaged = [d for d in check_run(self.dir) if d.path == META_FILE]
        try:
            self.config()
        except DamagedRun as error:
            damaged.append(Damage(CONFIG_FILE, str(error)))
        return damaged

    def _replace_damaged_head(self, config: Config, meta: dict[str, Any]) -> None:
        """Move a damaged config.json / meta.json aside and write them again from what the caller knows."""
        if self._damaged_head():
            with self.lock():
                damaged = self._damaged_head()
                if damaged:
                    self._move_aside(damaged)
                    if not (self.dir / CONFIG_FILE).exists():
                        atomic_write_text(self.dir / CONFIG_FILE, config.to_json() + "\n", self._checked(CONFIG_FILE))
                    if not (self.dir / META_FILE).exists():
                        write_json(self.dir / META_FILE, meta, before_rename=self._checked(META_FILE))

    def lock(self, timeout: float = -1) -> FileLock:
        """One writer per run directory; a second process says the run is busy, then waits here."""
        return _RunLock(str(self.dir / ".lock"), timeout=timeout)

    # -- integrity ------------------------------------------------------------------------------
    def _move_aside(self, damages: list[Damage]) -> None:
        folder, moved = move_aside(self.dir, damages)
        for name in moved:
            print(f"sddlab: moved damaged {name} to {folder}/ (it will be recomputed)", file=sys.stderr, flush=True)

    def repair(self) -> list[Damage]:
        """Under the lock: move damaged files aside (never deleting) and drop stale temporary files;
        returns what was damaged. The levels whose record went are recomputed by the next run."""
        for stale in self.dir.rglob(".*.tmp"):
            if stale.is_file() and not stale.is_symlink():
                stale.unlink()
        damages = check_run(self.dir)
        if any(d.path == CONFIG_FILE for d in damages):  # valid and of this config's hash (open_or_create)
            atomic_write_text(self.dir / CONFIG_FILE, self.config().to_json() + "\n", self._checked(CONFIG_FILE))
        damages = [d for d in damages if d.path != CONFIG_FILE]
        if damages:
            self._move_aside(damages)
            self.write_tables()
        return damages

    # -- config and meta ------------------------------------------------------------------------
    def config(self) -> Config:
        """The stored config; a config.json that is not a valid config is a one-line error naming it."""
        path = self._inside(self.dir / CONFIG_FILE)
        try:
            return Config.from_json(path.read_text())
        except (ValueError, TypeError, UnicodeDecodeError) as error:
            raise DamagedRun(f"{path} is not a valid sddlab config ({str(error).splitlines()[0]}); "
                             "restore it or remove the run directory") from None

    def meta(self) -> dict[str, Any]:
        path = self._inside(self.dir / META_FILE)
        if not path.exists():
            return {}
        try:
            meta = read_json(path)
        except (ValueError, UnicodeDecodeError):
            meta = None
        if not isinstance(meta, dict):
            raise DamagedRun(describe(self.dir, [Damage(META_FILE, "not a JSON object")]))
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

    def _intact_checkpoint(self, name: str) -> Path:
        """The checkpoint's path once its checksum and structure verify; else a one-line `DamagedRun`."""
        path = self._inside(self.checkpoint_path(name))
        damages = check_files(self.dir, [f"checkpoints/{name}.safetensors"])
        if damages:
            raise DamagedRun(describe(self.dir, damages))
        return path

    def load_checkpoint(self, name: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        return load_tensors(self._intact_checkpoint(name), device)

    def checkpoint_metadata(self, name: str) -> dict[str, str]:
        return load_metadata(self._intact_checkpoint(name))

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
        self._save_small("examples.safetensors", labels)

    def _save_small(self, relative: str, tensors: dict[str, torch.Tensor]) -> None:
        def small(t: torch.Tensor) -> bool:
            return t.dtype != torch.bool and (t.numel() == 0 or 0 <= int(t.min()) <= int(t.max()) < 256)

        compact = {name: (t.to(torch.uint8) if small(t) else t).detach().cpu().contiguous()
                   for name, t in tensors.items()}
        save_tensors(self._inside(self.dir / relative), compact, None, self._checked(relative))

    def load_predictions(self, level: int) -> dict[str, torch.Tensor]:
        """A level's stored predictions as int64 tensors (a one-line `DamagedRun` when damaged)."""
        return self._load_small(f"levels/level_{level:02d}.predictions.safetensors")

    def load_examples(self) -> dict[str, torch.Tensor]:
        return self._load_small("examples.safetensors")

    def _load_small(self, relative: str) -> dict[str, torch.Tensor]:
        damages = check_files(self.dir, [relative])
        if damages:
            raise DamagedRun(describe(self.dir, damages))
        return {name: t if t.dtype == torch.bool else t.long() for name, t in load_tensors(self.dir / relative).items()}

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

        A damaged record (checksum, JSON, a link out of the directory) is a one-line `DamagedRun`."""
        damages = check_run(self.dir, records_only=True)
        if damages:
            raise DamagedRun(describe(self.dir, damages))
        return [row for path in record_files(self.dir).values() for row in read_rows(path)]

    def table(self) -> pd.DataFrame:
        """The level table of a finished or partial run, one row per finished level."""
        return pd.DataFrame(self.records())

    def write_tables(self) -> None:
        table = self.table()
        atomic_write_text(self.dir / TABLE_CSV, table.to_csv(index=False), self._checked(TABLE_CSV))
        write_parquet(self.dir / TABLE_PARQUET, table, self._checked(TABLE_PARQUET))
