"""The preset registry: named configs, looked up with one clear error for an unknown name."""

from __future__ import annotations

from sddlab.config import Config
from sddlab.errors import ConfigError

PRESETS: dict[str, Config] = {}


def register_preset(config: Config) -> Config:
    if config.name in PRESETS:
        raise ValueError(f"preset {config.name!r} registered twice")
    PRESETS[config.name] = config
    return config


def get_preset(name: str) -> Config:
    """A preset by name; unknown names fail with the list of known ones."""
    if name not in PRESETS:
        raise ConfigError("preset", name, f"one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def list_presets() -> dict[str, Config]:
    return dict(sorted(PRESETS.items()))


def cost(config: Config) -> str:
    """Estimated training cost: levels x length of one level (fine-tuning levels counted at their length)."""
    levels, duration = config.experiment.levels + 1, config.training.duration
    if config.retraining.mode == "finetune" and config.retraining.finetune_duration:
        return f"1 x {duration} + {levels - 1} x {config.retraining.finetune_duration}"
    return f"{levels} x {duration} = {levels * duration.count} {duration.unit}"
