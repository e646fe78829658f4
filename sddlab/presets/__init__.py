"""Named experiments: laptop presets (`laptop`) and one preset per experiment of the paper (`paper`)."""

from sddlab.presets import laptop, paper  # noqa: F401  (registers the presets)
from sddlab.presets.registry import PRESETS, cost, get_preset, list_presets, register_preset

__all__ = ["PRESETS", "cost", "get_preset", "list_presets", "register_preset"]
