"""A whole data set resident on the device, with label noise applied and seeded batch orders."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sddlab import paths
from sddlab.config import DataConfig, NoiseConfig
from sddlab.data.noise import corrupt_labels
from sddlab.data.registry import DATASETS, DatasetSpec, RawData
from sddlab.seeds import numpy_stream, stream_seed


@dataclass
class DeviceData:
    """Training and test tensors on one device; training labels noisy, clean ones and masks kept."""

    spec: DatasetSpec
    x_train: torch.Tensor
    y_train: torch.Tensor  # noisy labels, the ones training sees
    y_train_clean: torch.Tensor
    noisy: torch.Tensor  # bool: training label differs from the true one
    selected: torch.Tensor  # bool: drawn for corruption
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    nominal_rate: float
    effective_rate: float
    x_holdout: torch.Tensor | None = None  # `data.holdout`: never trained on, labels as noisy as y_train
    y_holdout: torch.Tensor | None = None
    y_holdout_clean: torch.Tensor | None = None  # for analyses only; the selection rules never see it

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def iterations_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.num_train / batch_size)

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        """The shuffled example order of `epoch`: a function of (seed, epoch) only, so runs resume exactly."""
        generator = torch.Generator().manual_seed(stream_seed(seed, "order", epoch))
        return torch.randperm(self.num_train, generator=generator).to(self.device)

    def noise_summary(self) -> dict[str, float | int]:
        return {
            "nominal_rate": self.nominal_rate,
            "effective_rate": self.effective_rate,
            "noisy_examples": int(self.noisy.sum()),
            "train_examples": self.num_train,
            "test_examples": len(self.y_test),
        }


@functools.lru_cache(maxsize=8)
def _load_raw(name: str, data_dir: str) -> RawData:
    return DATASETS[name].load(Path(data_dir))


def prepare_data(
    data: DataConfig,
    noise: NoiseConfig,
    seed: int,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> DeviceData:
    """Load a data set by name, subsample and corrupt its training labels (independent streams), move it.

    `data_dir` None follows `sddlab.paths.data_dir` (the SDDLAB_DATA variable, else ./data)."""
    spec = DATASETS[data.name]
    raw = _load_raw(data.name, str(paths.data_dir(data_dir).resolve()))
    x_train, y_train = raw.x_train, raw.y_train
    if data.subset is not None and data.subset < len(y_train):
        keep = np.sort(numpy_stream(seed, "subset").choice(len(y_train), size=data.subset, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]
    mapping = spec.asymmetric
    if noise.asymmetric_map == "official" and spec.asymmetric_official is not None:
        mapping = spec.asymmetric_official
    labels = corrupt_labels(y_train.numpy(), raw.num_classes, noise.type, noise.rate, numpy_stream(seed, "noise"), mapping)
    train, held = _holdout_split(len(y_train), data.holdout, seed)
    device = torch.device(device)

    def part(array: torch.Tensor | np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """The rows of a training array on the device (all of it, uncopied, without a held-out split)."""
        tensor = torch.from_numpy(array) if isinstance(array, np.ndarray) else array
        return (tensor if len(held) == 0 else tensor[torch.from_numpy(rows)]).to(device)

    kept = labels.noisy[train]
    return DeviceData(
        spec=spec,
        x_train=part(x_train, train),
        y_train=part(labels.labels, train),
        y_train_clean=part(labels.clean, train),
        noisy=part(labels.noisy, train),
        selected=part(labels.selected, train),
        x_test=raw.x_test.to(device),
        y_test=raw.y_test.to(device),
        num_classes=raw.num_classes,
        nominal_rate=noise.rate,
        effective_rate=float(kept.mean()) if len(held) else labels.effective_rate,
        x_holdout=part(x_train, held) if len(held) else None,
        y_holdout=part(labels.labels, held) if len(held) else None,
        y_holdout_clean=part(labels.clean, held) if len(held) else None,
    )


def _holdout_split(count: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows and held-out rows (both sorted): a seeded draw of round(share x count) examples.

    Drawn after the labels are corrupted, so the held-out labels are exactly as noisy as the trained ones.
    """
    every = np.arange(count)
    size = int(round(share * count))
    if size == 0:
        return every, every[:0]
    held = np.sort(numpy_stream(seed, "holdout").choice(count, size=size, replace=False))
    return np.setdiff1d(every, held, assume_unique=True), held
