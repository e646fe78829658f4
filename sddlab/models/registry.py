"""Models by name, what of each is prunable, and the paper's initialisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from sddlab.catalog import Catalog

if TYPE_CHECKING:  # type hints only: the config validates names against this package
    from sddlab.config import ModelConfig

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class ModelSpec:
    """A model builder plus the layers it never prunes by default (e.g. LeNet's output layer)."""

    name: str
    description: str
    # (model config, input shape without batch, number of classes) -> module
    build: Callable[[ModelConfig, tuple[int, ...], int], nn.Module]
    default_ignored: tuple[str, ...] = ()


MODELS: Catalog[ModelSpec] = Catalog("model.name")


def register_model(name: str, description: str, default_ignored: tuple[str, ...] = ()) -> Callable:
    """Decorator registering `build(config, input_shape, num_classes) -> nn.Module` under `name`."""

    def decorate(build: Callable) -> Callable:
        MODELS.add(name, ModelSpec(name, description, build, tuple(default_ignored)))
        return build

    return decorate


def prunable_layers(model: nn.Module) -> list[str]:
    """Names of the modules whose `weight` may be pruned (linear and conv layers)."""
    return [name for name, module in model.named_modules() if isinstance(module, PRUNABLE_TYPES)]


def prunable_names(model: nn.Module, ignored: tuple[str, ...]) -> list[str]:
    """Parameter names (`layer.weight`) that pruning acts on: linear/conv weights outside `ignored`."""
    return [f"{layer}.weight" for layer in prunable_layers(model) if layer not in ignored]


def initialise(model: nn.Module, init: str, bn_init: str, generator: torch.Generator) -> None:
    """Kaiming-normal conv/linear weights and BatchNorm gamma ~ U(0,1), beta = 0, as the paper's code.

    Biases keep PyTorch's default initialisation (as the paper's code does); `init='default'`
    keeps PyTorch's default everywhere except BatchNorm when `bn_init='uniform'`.
    """
    for module in model.modules():
        if isinstance(module, PRUNABLE_TYPES) and init == "kaiming_normal":
            nn.init.kaiming_normal_(module.weight, generator=generator)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and bn_init == "uniform":
            nn.init.uniform_(module.weight, 0.0, 1.0, generator=generator)
            nn.init.zeros_(module.bias)
