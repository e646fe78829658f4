"""Data sets by name: each entry loads raw tensors and says how to turn a batch into model input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sddlab.catalog import Catalog


@dataclass
class RawData:
    """A whole data set as CPU tensors: float features (already normalised) or uint8 images (NCHW)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int


# (batch on the device, torch.Generator on the same device) -> float batch ready for the model
TrainTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
EvalTransform = Callable[[torch.Tensor], torch.Tensor]


def _identity_train(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x


def _identity_eval(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass(frozen=True)
class DatasetSpec:
    """How to get one data set and how its batches are prepared on the device."""

    name: str
    description: str
    load: Callable[[Path], RawData]  # data_dir -> RawData; raises DatasetMissing with a one-line hint
    num_classes: int
    input_shape: tuple[int, ...]
    asymmetric: dict[int, int] | None = None  # class -> class for asymmetric noise
    asymmetric_official: dict[int, int] | None = None  # the paper's code's map where it differs (noise.asymmetric_map)
    train_transform: TrainTransform = _identity_train
    eval_transform: EvalTransform = _identity_eval
    pictures: Callable[[torch.Tensor], np.ndarray] | None = None  # stored rows -> (n, H, W) images to look at


DATASETS: Catalog[DatasetSpec] = Catalog("data.name")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a data set to the registry (names are unique)."""
    return DATASETS.add(spec.name, spec)
