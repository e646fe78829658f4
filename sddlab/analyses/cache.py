"""Cached analysis folders inside a run directory: RUN_DIR/analyses/<kind>-<hash of its options>/.

A folder holds `options.json` (what the hash covers), one `items/<item>.json` per finished item
(usually a level; written last, so it is the item's "done" marker), `weights/<item>.safetensors` for
any trained weights (written before the item's JSON), `table.parquet` / `table.csv` with the rows of
every finished item, and the HTML figures of the latest call (the levels it asked for). Every file
is written atomically; a rerun with the same options reads finished items back instead of
recomputing them, so an interrupted analysis resumes at the first unfinished item. The level
selection is not part of the hash: asking for levels 3 and 5 after level 3 alone reuses level 3.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from filelock import FileLock
from plotly.basedatatypes import BaseFigure
from tqdm.auto import tqdm

from sddlab.io import (
    atomic_write_text,
    load_tensors,
    read_rows,
    save_tensors,
    write_html,
    write_json,
    write_parquet,
)

ANALYSIS_DIR = "analyses"
OPTIONS_FILE = "options.json"


def options_hash(kind: str, options: dict[str, Any]) -> str:
    """An 8-hex-digit hash of the kind and its (JSON-able) result-changing options."""
    text = json.dumps({"kind": kind, **options}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class AnalysisCache:
    """One analysis folder: items written as they finish, read back on a rerun."""

    def __init__(self, run_dir: str | Path, kind: str, options: dict[str, Any]):
        self.kind = kind
        self.options = json.loads(json.dumps(options, sort_keys=True, default=str))
        self.key = options_hash(kind, self.options)
        self.dir = Path(run_dir) / ANALYSIS_DIR / f"{kind}-{self.key}"

    def open(self) -> AnalysisCache:
        if not (self.dir / OPTIONS_FILE).exists():
            write_json(self.dir / OPTIONS_FILE, {"kind": self.kind, "options": self.options})
        return self

    def lock(self) -> FileLock:
        """One writer per analysis folder; a second process waits, then reads what the first wrote."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.dir / ".lock"))

    # -- items ------------------------------------------------------------------------------------
    def _item_path(self, item: str) -> Path:
        return self.dir / "items" / f"{item}.json"

    def has(self, item: str) -> bool:
        return self._item_path(item).exists()

    def load(self, item: str) -> list[dict[str, Any]]:
        return read_rows(self._item_path(item))

    def save(self, item: str, rows: list[dict[str, Any]]) -> None:
        write_json(self._item_path(item), rows, indent=1)

    def missing(self, levels: list[int]) -> list[int]:
        """The levels without a finished item (what a call would compute, for its cost line)."""
        return [level for level in levels if not self.has(level_item(level))]

    # -- trained weights --------------------------------------------------------------------------
    def weights_path(self, item: str) -> Path:
        return self.dir / "weights" / f"{item}.safetensors"

    def save_weights(self, item: str, tensors: dict[str, torch.Tensor]) -> None:
        save_tensors(self.weights_path(item), tensors)

    def load_weights(self, item: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        return load_tensors(self.weights_path(item), device)

    # -- outputs ----------------------------------------------------------------------------------
    def write_table(self, table: pd.DataFrame, name: str = "table") -> Path:
        write_parquet(self.dir / f"{name}.parquet", table)
        atomic_write_text(self.dir / f"{name}.csv", table.to_csv(index=False))
        return self.dir / f"{name}.parquet"

    def items(
        self,
        names: list[str],
        compute: Callable[[str], list[dict[str, Any]]],
        *,
        desc: str = "",
        progress: bool = True,
    ) -> pd.DataFrame:
        """Rows of every item: read back when finished, else `compute(item)` and save at once."""
        rows: list[dict[str, Any]] = []
        todo = [name for name in names if not self.has(name)]
        self.open()
        bar = tqdm(total=len(todo), desc=desc or self.kind, unit="item", disable=not progress or not todo)
        with bar:
            for name in names:
                if self.has(name):
                    rows.extend(self.load(name))
                    continue
                with self.lock():
                    if not self.has(name):  # another process may have finished it meanwhile
                        self.save(name, compute(name))
                rows.extend(self.load(name))
                bar.update(1)
        if todo or not (self.dir / "table.parquet").exists():
            self.write_table(self.finished())
        return pd.DataFrame(rows)

    def finished(self) -> pd.DataFrame:
        """Rows of every finished item in the folder (not only those of the latest call), by item name."""
        paths = sorted((self.dir / "items").glob("*.json"))
        return pd.DataFrame([row for path in paths for row in read_rows(path)])


def level_item(level: int) -> str:
    return f"level_{level:02d}"


def say(message: str, progress: bool = True) -> None:
    """A one-line note (costs, choices) printed above any progress bar; silent when progress is off."""
    if progress:
        tqdm.write(message)


@dataclass
class AnalysisResult:
    """What every analysis returns: a tidy table, its main figure, the cache folder and a summary line.

    `compact` is the compact table printed by the CLI (default: `table`); `extra` holds further
    tables and figures (name -> DataFrame / go.Figure / object).
    """

    kind: str
    table: pd.DataFrame
    figure: Any
    directory: Path
    summary: str = ""
    compact: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> pd.DataFrame:
        return self.table if self.compact is None else self.compact

    def figures(self) -> dict[str, Any]:
        """The main figure under the analysis' kind, then every figure in `extra`."""
        out = {self.kind: self.figure} if self.figure is not None else {}
        out.update({name: value for name, value in self.extra.items() if isinstance(value, BaseFigure)})
        return out

    def write_figures(self) -> list[Path]:
        """Write every figure as self-contained HTML into the analysis folder, and those of the analyses
        it is built on (results in `extra`) into theirs; returns the paths."""
        paths = [write_html(fig, self.directory / f"{name}.html") for name, fig in self.figures().items()]
        for value in self.extra.values():
            if isinstance(value, AnalysisResult):
                paths.extend(value.write_figures())
        return paths
