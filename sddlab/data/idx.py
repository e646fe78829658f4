"""IDX files (the MNIST family's format), read straight from `.gz` or plain files without unpacking them.

Used for read-only system copies such as Debian's `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist/),
which sddlab reads where the package put them, never copying them. A header whose sizes disagree with the file
is refused before any large allocation.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from sddlab.errors import SddError

_UBYTE = 0x08
MAX_ITEMS = 10_000_000  # far above any IDX data set; a larger header is damage, not data


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array stored in one IDX file (`.gz` or not); SddError naming the file when it is malformed."""
    path = Path(path)
    if not path.is_file():
        raise SddError(f"{path}: not a regular file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            header = stream.read(4)
            if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] != _UBYTE or not 1 <= header[3] <= 4:
                raise SddError(f"{path}: not an unsigned-byte IDX file (magic {header.hex() or 'missing'})")
            dims_raw = stream.read(4 * header[3])
            if len(dims_raw) != 4 * header[3]:
                raise SddError(f"{path}: truncated IDX header")
            dims = tuple(int.from_bytes(dims_raw[i : i + 4], "big") for i in range(0, len(dims_raw), 4))
            count = int(np.prod(dims, dtype=np.int64))
            if dims[0] > MAX_ITEMS or count > MAX_ITEMS * 28 * 28:
                raise SddError(f"{path}: IDX header claims {dims}, more than any data set this reader accepts")
            payload = stream.read(count + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise SddError(f"{path}: unreadable ({error})") from None
    if len(payload) != count:
        raise SddError(f"{path}: header says {count} bytes of data, the file holds {len(payload)}")
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)
