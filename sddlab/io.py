"""Files that survive a crash: atomic writes, JSON-safe values, safetensors checkpoints.

Every file sddlab writes goes through `atomic_write`: the content lands in a temporary file in the
same folder, is flushed to disk, then renamed over the target, so a reader sees the old file or the
new one and never half of one. Nothing is ever unpickled from disk.

A write that fails (full disk, file-size limit, unwritable folder) raises a one-line `WriteFailed`
and leaves the previous file in place. Reading never follows a symbolic link, never opens a FIFO or a
folder where a file should be, and refuses a file larger than its kind may be before allocating for it
(`UnreadableFile`), so the cost of a read follows the file's real size, never a size it claims.
Test-only switch: `SDDLAB_TEST_KILL_AT_WRITE=N` makes the process SIGKILL itself inside its N-th atomic
write (temporary file written, target not yet replaced), so tests can crash a run at any write.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from sddlab.errors import SddError

KILL_AT_WRITE = "SDDLAB_TEST_KILL_AT_WRITE"  # test-only: SIGKILL inside the N-th atomic write
MAX_JSON_BYTES = 16 << 20  # JSON sddlab writes is kB (records, meta) to a few MB (analysis tables)
MAX_HEADER_BYTES = 16 << 20  # a safetensors header of a few hundred tensors is tens of kB
_writes = 0


class WriteFailed(SddError, OSError):
    """A file could not be written (disk full, size limit, permissions); the previous file is intact."""


class UnreadableFile(SddError, OSError):
    """A file that is a link, a FIFO or a folder, or larger than its kind may be: refused before reading."""


def file_kind(mode: int) -> str:
    """'file', 'folder', 'link', 'FIFO' or 'special file': what an `lstat` mode is, in words."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "link"
    return "FIFO" if stat.S_ISFIFO(mode) else "special file"


def open_regular(path: str | Path, limit: int | None = None) -> tuple[int, int]:
    """(descriptor, size) of a regular file opened without following a link or blocking on a FIFO;
    `UnreadableFile` when it is anything else, or larger than `limit` bytes. The caller closes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        kind = "a symbolic link (not followed)" if os.path.islink(path) else error.strerror or str(error)
        raise UnreadableFile(f"{path} cannot be read: {kind}") from None
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = f"a {file_kind(info.st_mode)} where a file should be"
    elif limit is not None and info.st_size > limit:
        problem = f"{info.st_size} bytes, more than the {limit} this kind of file may hold"
    if problem:
        os.close(fd)
        raise UnreadableFile(f"{path} cannot be read: {problem}")
    return fd, info.st_size


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see `open_regular`)."""
    fd, size = open_regular(path, limit)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(size)  # what the file held when opened, never more


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
    fd, _ = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    """This process's umask (read by setting it and setting it back): new files get 0o666 & ~umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide results from colleagues
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


def _no_constant(name: str) -> Any:
    raise ValueError(f"a non-finite number ({name}), which sddlab never writes")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"a non-finite number ({text}), which sddlab never writes")
    return value


def parse_json(payload: bytes | str) -> Any:
    """JSON as sddlab writes it: NaN, Infinity and overflowing numbers are refused (`ValueError`)."""
    return json.loads(payload, parse_constant=_no_constant, parse_float=_finite)


def read_json(path: str | Path, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file sddlab wrote: a regular file of at most `limit` bytes, holding only finite numbers."""
    return parse_json(read_regular(path, limit))


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
    """The tensors of a safetensors file (a regular file, read whole: memory follows its size on disk)."""
    tensors = load_safetensors(read_regular(path))
    return {name: t.to(device) for name, t in tensors.items()}


def read_header(path: str | Path) -> tuple[dict[str, Any], int, int]:
    """(header, where the data starts, file size) of a safetensors file; the header's claimed length is
    checked against the file's size and `MAX_HEADER_BYTES` before it is read (`ValueError` if it does not fit)."""
    fd, size = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError(f"truncated ({size} bytes)")
        length = int.from_bytes(head, "little")
        if length > size - 8:
            raise ValueError(f"truncated (header of {length} bytes in a file of {size})")
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"a header of {length} bytes, more than the {MAX_HEADER_BYTES} allowed")
        header = parse_json(handle.read(length))
    if not isinstance(header, dict):
        raise ValueError("a header that is not a JSON object")
    return header, 8 + length, size


def load_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata saved with a safetensors file (its header only is read)."""
    metadata = read_header(path)[0].get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("metadata that is not a map of strings")
    return metadata
