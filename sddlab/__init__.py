"""sddlab: reproduce, explore and teach sparse double descent (He et al., ICML 2022).

The flow: config -> data -> model + mask -> levels (experiment) -> store -> analyses -> figures -> app.

The names below load on first use (PEP 562), so `import sddlab` and the command line start at once and a
Ctrl-C while torch loads is the command line's to handle (one line, exit 130).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sddlab.version import __version__

if TYPE_CHECKING:
    from sddlab.collect import index, load
    from sddlab.config import Config
    from sddlab.errors import ConfigError, DatasetMissing, SddError
    from sddlab.presets import get_preset, list_presets
    from sddlab.runs import run

_HOMES = {
    "index": "sddlab.collect",
    "load": "sddlab.collect",
    "Config": "sddlab.config",
    "ConfigError": "sddlab.errors",
    "DatasetMissing": "sddlab.errors",
    "SddError": "sddlab.errors",
    "get_preset": "sddlab.presets",
    "list_presets": "sddlab.presets",
    "run": "sddlab.runs",
}

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


def __getattr__(name: str) -> Any:
    """A public name from its home module, or a submodule (`sddlab.errors`), imported on first use."""
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"sddlab.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"sddlab.{name}":
            raise
        raise AttributeError(f"module 'sddlab' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
