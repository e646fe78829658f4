"""Run directories: atomic writes, safetensors checkpoints, per-level records, a results index."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from filelock import FileLock

from sddlab.config import Config
from sddlab.errors import ConfigError, SddError
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


class RunStore:
    """One run directory: `config.json`, `meta.json`, `levels/level_NN.{json,safetensors}`, tables."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        if not (self.dir / CONFIG_FILE).exists():
            raise SddError(f"{self.dir} is not a run directory (no {CONFIG_FILE})")

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
                atomic_write_text(staging / CONFIG_FILE, config.to_json() + "\n")
                write_json(staging / META_FILE, meta)
                with contextlib.suppress(OSError):  # another process created it first
                    staging.rename(run_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        store = cls(run_dir)
        stored = store.config()
        if stored.short_hash() != config.short_hash():
            raise SddError(f"{run_dir} holds a different config (hash {stored.short_hash()})")
        return store

    def lock(self, timeout: float = -1) -> FileLock:
        """One writer per run directory; a second process waits here."""
        return FileLock(str(self.dir / ".lock"), timeout=timeout)

    # -- config and meta ------------------------------------------------------------------------
    def config(self) -> Config:
        return Config.from_json((self.dir / CONFIG_FILE).read_text())

    def meta(self) -> dict[str, Any]:
        path = self.dir / META_FILE
        return read_json(path) if path.exists() else {}

    def update_meta(self, **values: Any) -> None:
        write_json(self.dir / META_FILE, {**self.meta(), **values})

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_path(self, name: str) -> Path:
        return self.dir / "checkpoints" / f"{name}.safetensors"

    def has_checkpoint(self, name: str) -> bool:
        return self.checkpoint_path(name).exists()

    def save_checkpoint(self, name: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None):
        save_tensors(self.checkpoint_path(name), tensors, metadata)

    def load_checkpoint(self, name: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        return load_tensors(self.checkpoint_path(name), device)

    def checkpoint_metadata(self, name: str) -> dict[str, str]:
        return load_metadata(self.checkpoint_path(name))

    def remove_checkpoint(self, name: str) -> None:
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

    # -- level records --------------------------------------------------------------------------
    def _record_path(self, level: int) -> Path:
        return self.dir / "levels" / f"level_{level:02d}.json"

    def has_level(self, level: int) -> bool:
        return self._record_path(level).exists()

    def save_level(self, level: int, record: dict[str, Any]) -> None:
        """Write the record (the level's 'done' marker, so its checkpoints go first) and the tables."""
        write_json(self._record_path(level), record)
        self.write_tables()

    def records(self) -> list[dict[str, Any]]:
        """Every finished level's record, by level; values JSON stores as null (undefined) read as NaN."""
        paths = sorted((self.dir / "levels").glob("level_*.json"))
        return [row for path in paths for row in read_rows(path)]

    def table(self) -> pd.DataFrame:
        """The level table of a finished or partial run, one row per finished level."""
        return pd.DataFrame(self.records())

    def write_tables(self) -> None:
        table = self.table()
        atomic_write_text(self.dir / TABLE_CSV, table.to_csv(index=False))
        write_parquet(self.dir / TABLE_PARQUET, table)


def load(run_dir: str | Path) -> pd.DataFrame:
    """The level table of one run directory, config fields as columns (`noise.rate`, ...)."""
    return index([run_dir])


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory under `root` (any depth)."""
    return sorted(path.parent for path in Path(root).rglob(CONFIG_FILE) if not path.parent.name.startswith("."))


def index(paths: str | Path | Iterable[str | Path] = "results") -> pd.DataFrame:
    """A tidy DataFrame over many runs: one row per run × finished level, config fields as columns."""
    if isinstance(paths, (str, Path)):
        root = Path(paths)
        if not root.is_dir():
            raise SddError(f"results={str(root)!r} is not allowed: an existing folder of run directories")
        paths = [root] if (root / CONFIG_FILE).exists() else find_runs(root)
    frames = []
    for path in paths:
        store = RunStore(Path(path))
        table = store.table()
        if table.empty:
            continue
        config = store.config()
        for key, value in config.flat().items():
            table[key] = value
        table["run"] = store.dir.name
        table["run_dir"] = str(store.dir)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
