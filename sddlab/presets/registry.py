"""The preset registry: named configs, looked up with one clear error for an unknown name."""

from __future__ import annotations

from sddlab.catalog import Catalog
from sddlab.config import Config

PRESETS: Catalog[Config] = Catalog("preset")


def register_preset(config: Config) -> Config:
    """Add a preset under its config's name (names are unique)."""
    return PRESETS.add(config.name, config)


def get_preset(name: str) -> Config:
    """A preset by name; unknown names fail with the list of known ones."""
    return PRESETS.lookup(name)


def list_presets() -> dict[str, Config]:
    return dict(sorted(PRESETS.items()))


def cost(config: Config) -> str:
    """Estimated training cost: levels x length of one level (fine-tuning levels counted at their length)."""
    levels, duration = config.experiment.levels + 1, config.training.duration
    if config.retraining.mode == "finetune" and config.retraining.finetune_duration:
        return f"1 x {duration} + {levels - 1} x {config.retraining.finetune_duration}"
    return f"{levels} x {duration} = {levels * duration.count} {duration.unit}"
