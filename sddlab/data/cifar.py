"""Read the official CIFAR-10/100 "python version" batches safely, and CIFAR's label maps.

The official format is a set of pickled dicts, so it cannot be read without pickle. We never call
`pickle.load` on it: a restricted Unpickler resolves only the few globals a numpy uint8 array needs
(and refuses object dtypes), so a tampered file fails instead of running code. torchvision's own
CIFAR classes are not used for reading: they unpickle without restriction and insist on the official
md5 sums, which would also reject re-packed copies and the small test fixtures. Instead every batch is
checked structurally (uint8 N×3072 images, N labels in range). An archive downloaded through
torchvision is still verified against its md5.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

# CIFAR-100 fine label (alphabetical: apple, aquarium_fish, ...) -> coarse label (aquatic_mammals, fish, ...),
# the standard table of the CIFAR-100 release (its files carry both labels per image).
CIFAR100_COARSE = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)  # fmt: skip

# Asymmetric noise (paper): truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog.
CIFAR10_ASYMMETRIC = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


def _next_in_group(groups: list[list[int]]) -> dict[int, int]:
    return {members[k]: members[(k + 1) % len(members)] for members in groups for k in range(len(members))}


def cifar100_asymmetric() -> dict[int, int]:
    """Each fine class -> the next fine class (by index, cyclically) of its own super-class."""
    groups = [[fine for fine, coarse in enumerate(CIFAR100_COARSE) if coarse == c] for c in range(20)]
    return _next_in_group(groups)


def cifar100_asymmetric_official_code() -> dict[int, int]:
    """What the paper's code does instead: blocks of 5 consecutive fine indices (not true super-classes)."""
    return _next_in_group([list(range(start, start + 5)) for start in range(0, 100, 5)])


# -- restricted unpickling --------------------------------------------------------------------------
def _dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed in a CIFAR batch")
    return dtype


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    if encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed in a CIFAR batch")
    return codecs.encode(text, "latin1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1,  # how Python 3 pickles bytes at protocol 2
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that builds only dicts, lists, strings, numbers and plain numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch") from None


def read_batch(path: Path) -> dict[str, Any]:
    """One CIFAR batch file as a dict with str keys (Python 2 byte strings read as latin-1)."""
    with open(path, "rb") as handle:
        entry = _BatchUnpickler(handle, encoding="latin1").load()
    if not isinstance(entry, dict):
        raise pickle.UnpicklingError(f"{path} does not hold a dict")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in entry.items()}


def read_images(paths: list[Path], label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from CIFAR batch files, structurally checked."""
    images, labels = [], []
    for path in paths:
        entry = read_batch(path)
        data = entry.get("data")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{path}: 'data' is not a uint8 N×3072 array")
        if label_key not in entry:
            raise ValueError(f"{path}: no {label_key!r} entry")
        batch_labels = np.asarray(entry[label_key], dtype=np.int64)
        if (
            batch_labels.shape != (len(data),)
            or batch_labels.min(initial=0) < 0
            or batch_labels.max(initial=0) >= num_classes
        ):
            raise ValueError(f"{path}: {label_key!r} must hold {len(data)} labels in [0, {num_classes})")
        if label_key == "fine_labels" and "coarse_labels" in entry:
            coarse = np.asarray(entry["coarse_labels"], dtype=np.int64)
            if not np.array_equal(coarse, np.asarray(CIFAR100_COARSE)[batch_labels]):
                raise ValueError(f"{path}: coarse labels disagree with the CIFAR-100 fine->coarse table")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)
