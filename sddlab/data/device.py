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
    device = torch.device(device)
    return DeviceData(
        spec=spec,
        x_train=x_train.to(device),
        y_train=torch.from_numpy(labels.labels).to(device),
        y_train_clean=torch.from_numpy(labels.clean).to(device),
        noisy=torch.from_numpy(labels.noisy).to(device),
        selected=torch.from_numpy(labels.selected).to(device),
        x_test=raw.x_test.to(device),
        y_test=raw.y_test.to(device),
        num_classes=raw.num_classes,
        nominal_rate=noise.rate,
        effective_rate=labels.effective_rate,
    )
