"""sddlab: reproduce, explore and teach sparse double descent (He et al., ICML 2022).

The flow: config -> data -> model + mask -> levels (experiment) -> store -> analyses -> figures -> app.
"""

from sddlab.collect import index, load
from sddlab.config import Config
from sddlab.errors import ConfigError, DatasetMissing, SddError
from sddlab.presets import get_preset, list_presets
from sddlab.runs import run
from sddlab.version import __version__

__all__ = [
    "Config",
    "ConfigError",
    "DatasetMissing",
    "SddError",
    "__version__",
    "get_preset",
    "index",
    "list_presets",
    "load",
    "run",
]
