"""sddlab: reproduce, explore and teach sparse double descent (He et al., ICML 2022)."""

__version__ = "0.1.0"

from sddlab.config import Config  # noqa: E402
from sddlab.errors import ConfigError, DatasetMissing, SddError  # noqa: E402
from sddlab.presets import get_preset, list_presets  # noqa: E402
from sddlab.runner import run  # noqa: E402
from sddlab.store import index, load  # noqa: E402

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
