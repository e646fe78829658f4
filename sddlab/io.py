"""Files that survive a crash: atomic writes, JSON-safe values, safetensors checkpoints.

Every file sddlab writes goes through `atomic_write`: the content lands in a temporary file in the
same folder, is flushed to disk, then renamed over the target, so a reader sees the old file or the
new one and never half of one. Nothing is ever unpickled from disk.

A write that fails (full disk, file-size limit, unwritable folder) raises a one-line `WriteFailed`
and leaves the previous file in place. Test-only switch: `SDDLAB_TEST_KILL_AT_WRITE=N` makes the
process SIGKILL itself inside its N-th atomic write (temporary file written, target not yet replaced),
so tests can crash a run at any write.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from sddlab.errors import SddError

KILL_AT_WRITE = "SDDLAB_TEST_KILL_AT_WRITE"  # test-only: SIGKILL inside the N-th atomic write
_writes = 0


class WriteFailed(SddError, OSError):
    """A file could not be written (disk full, size limit, permissions); the previous file is intact."""


def _maybe_killed(path: Path) -> None:
    """The test-only crash switch: SIGKILL this process inside the N-th atomic write (of `path`)."""
    global _writes
    _writes += 1
    target = os.environ.get(KILL_AT_WRITE)
    if target and target.isdigit() and _writes == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | Path, write: Callable[[Path], None],
                 before_rename: Callable[[str], None] | None = None) -> Path:
    """Let `write(tmp_path)` fill a temporary file beside `path`, fsync it, then rename it over `path`.

    `before_rename(sha256)` runs once the temporary file is complete and before it replaces `path`
    (the run store records the checksum there, so either version of the file verifies after a crash).
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        _maybe_killed(path)
        if before_rename is not None:
            before_rename(sha256_file(tmp))
        os.replace(tmp, path)
    except OSError as error:
        if isinstance(error, SddError):
            raise
        raise WriteFailed(f"could not write {path}: {error.strerror or error} (disk full or folder not "
                          "writable?); the previous state is intact: free space and run again to resume") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, payload: bytes, before_rename: Callable[[str], None] | None = None) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload), before_rename)


def atomic_write_text(path: str | Path, text: str, before_rename: Callable[[str], None] | None = None) -> Path:
    return atomic_write_bytes(path, text.encode(), before_rename)


def json_safe(value: Any) -> Any:
    """Plain Python for JSON: numpy and torch scalars to numbers, tuples to lists, NaN and inf to None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_json(path: str | Path, obj: Any, indent: int = 2, before_rename: Callable[[str], None] | None = None) -> Path:
    """Atomically write `obj` (made JSON-safe first) as sorted, indented JSON."""
    return atomic_write_text(path, json.dumps(json_safe(obj), indent=indent, sort_keys=True) + "\n", before_rename)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Table rows written by `write_json` (one dict or a list of them), null read back as NaN."""
    rows = read_json(path)
    return [{key: math.nan if value is None else value for key, value in row.items()}
            for row in (rows if isinstance(rows, list) else [rows])]


def write_parquet(path: str | Path, table: Any, before_rename: Callable[[str], None] | None = None) -> Path:
    """Atomically write a pandas DataFrame as Parquet."""
    return atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False), before_rename)


def write_html(fig: Any, path: str | Path) -> Path:
    """A plotly figure as self-contained HTML (plotly.js embedded, so it opens offline), atomically."""
    return atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                 before_rename: Callable[[str], None] | None = None) -> Path:
    """Atomically save CPU-contiguous copies of `tensors` as safetensors."""
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    return atomic_write_bytes(path, save_safetensors(cpu, metadata=metadata), before_rename)


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    tensors = load_safetensors(Path(path).read_bytes())
    return {name: t.to(device) for name, t in tensors.items()}


def load_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata saved with a safetensors file."""
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}
