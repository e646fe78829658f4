"""Build a registered model deterministically from its own seeded stream."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import torch
from torch import nn

from sddlab.errors import ConfigError
from sddlab.models.registry import MODELS, initialise, prunable_layers

if TYPE_CHECKING:  # type hints only: the config validates names against this package
    from sddlab.config import ModelConfig


# PyTorch's default layer initialisation draws from the global generator, which threads share: two runs
# built at once in one process (a sweep, the explorer) would interleave their draws without this lock.
_GLOBAL_RNG = threading.Lock()


def build_model(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """A freshly initialised model on the CPU; the same seed gives bit-identical weights, in any thread."""
    spec = MODELS[config.name]
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.build(config, tuple(input_shape), num_classes)
        generator = torch.Generator().manual_seed(seed)
        initialise(model, config.init, config.bn_init, generator)
    return model


def resolve_ignored(config: ModelConfig, model: nn.Module) -> tuple[str, ...]:
    """The layers never pruned: the config's list, or the model's default; unknown names are an error."""
    if config.ignored is None:
        return MODELS[config.name].default_ignored
    layers = prunable_layers(model)
    for layer in config.ignored:
        if layer not in layers:
            raise ConfigError("model.ignored", layer, f"a prunable layer of {config.name}: {', '.join(layers)}")
    return tuple(config.ignored)
