"""Data sets by name; importing this package registers every built-in data set."""

from sddlab.data import tabular, vision  # noqa: F401  (registers digits, mnist1d; image sets)
from sddlab.data.device import DeviceData, prepare_data
from sddlab.data.noise import NoisyLabels, corrupt_labels
from sddlab.data.registry import DATASETS, DatasetSpec, RawData, register_dataset

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DeviceData",
    "NoisyLabels",
    "RawData",
    "corrupt_labels",
    "prepare_data",
    "register_dataset",
]
