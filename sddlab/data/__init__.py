"""Data sets by name; importing this package registers every built-in data set.

`sddlab.data.device.prepare_data` turns a config's data and noise sections into device tensors.
"""

from sddlab.data import mnist5k, tabular, vision  # noqa: F401  (registers digits, mnist1d, mnist5k; image sets)
from sddlab.data.noise import NoisyLabels, corrupt_labels
from sddlab.data.registry import DATASETS, DatasetSpec, RawData, register_dataset

__all__ = ["DATASETS", "DatasetSpec", "NoisyLabels", "RawData", "corrupt_labels", "register_dataset"]
