"""Data sets that need no download: scikit-learn's digits and the procedural MNIST-1D."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from sddlab.data.registry import DatasetSpec, RawData, register_dataset
from sddlab.io import current_umask

# MNIST's asymmetric map (2→7, 3→8, 5↔6), used by the paper and kept for the digit-like sets here.
MNIST_ASYMMETRIC = {2: 7, 3: 8, 5: 6, 6: 5}


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0
    return (x_train - mean) / std, (x_test - mean) / std


@functools.lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits split stratified 1203/594 (seed 0), raw pixel values 0..16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    return tuple(train_test_split(digits.data, digits.target, test_size=594, stratify=digits.target, random_state=0))


def load_digits_data(data_dir: Path) -> RawData:
    """scikit-learn's 8×8 digits: stratified 1203/594 split (seed 0), standardised with training statistics."""
    x_train, x_test, y_train, y_test = _digits_split()
    x_train, x_test = _standardise(x_train, x_test)
    return RawData(
        torch.tensor(x_train, dtype=torch.float32),
        torch.tensor(y_train, dtype=torch.int64),
        torch.tensor(x_test, dtype=torch.float32),
        torch.tensor(y_test, dtype=torch.int64),
        num_classes=10,
    )


def digits_pictures(x: torch.Tensor) -> np.ndarray:
    """Standardised digits rows back to their 8×8 pictures (pixel values 0..16) for display."""
    raw = _digits_split()[0]
    mean, std = raw.mean(0), raw.std(0)
    std[std == 0] = 1.0
    return (x.double().cpu().numpy() * std + mean).reshape(-1, 8, 8)


MNIST1D_SEED = 42


def _make_mnist1d() -> dict[str, np.ndarray]:
    """Generate MNIST-1D procedurally (never its download path), leaving numpy's global RNG untouched."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = MNIST1D_SEED
    state = np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {key: np.asarray(data[key]) for key in ("x", "y", "x_test", "y_test")}


def load_mnist1d_data(data_dir: Path) -> RawData:
    """MNIST-1D (4000 train / 1000 test, length 40), generated once and cached as .npz under data/."""
    path = Path(data_dir) / "mnist1d" / f"mnist1d-seed{MNIST1D_SEED}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as stored:
            data = {key: stored[key] for key in stored.files}
    else:
        data = _make_mnist1d()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **data)
        os.replace(tmp, path)
    return RawData(
        torch.tensor(data["x"], dtype=torch.float32),
        torch.tensor(data["y"], dtype=torch.int64),
        torch.tensor(data["x_test"], dtype=torch.float32),
        torch.tensor(data["y_test"], dtype=torch.int64),
        num_classes=10,
    )


register_dataset(
    DatasetSpec(
        name="digits",
        description="scikit-learn 8x8 digits, 1203 train / 594 test, ships with scikit-learn",
        load=load_digits_data,
        num_classes=10,
        input_shape=(64,),
        asymmetric=MNIST_ASYMMETRIC,
        pictures=digits_pictures,
    )
)
register_dataset(
    DatasetSpec(
        name="mnist1d",
        description="MNIST-1D, 4000 train / 1000 test sequences of length 40, generated procedurally",
        load=load_mnist1d_data,
        num_classes=10,
        input_shape=(40,),
        asymmetric=MNIST_ASYMMETRIC,
    )
)
