"""Fully connected networks: a configurable MLP and the paper's LeNet-300-100."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn

from sddlab.models.registry import register_model

if TYPE_CHECKING:  # type hints only: the config validates names against this package
    from sddlab.config import ModelConfig


class MLP(nn.Module):
    """Flatten, then Linear+ReLU per hidden width, then a linear output layer named `out`."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int):
        super().__init__()
        widths = (in_features, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=False))
        self.out = nn.Linear(widths[-1], num_classes)
        self.act = nn.ReLU()

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)


@register_model("mlp", "MLP with hidden widths from model.hidden; every weight matrix pruned")
def build_mlp(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return MLP(math.prod(input_shape), tuple(config.hidden), num_classes)


class LeNet300100(nn.Module):
    """LeNet-300-100: 784-300-100-10 with ReLU (layers fc1, fc2, fc3)."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)
        self.act = nn.ReLU()

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


@register_model("lenet-300-100", "LeNet-300-100 (paper); output layer fc3 not pruned", default_ignored=("fc3",))
def build_lenet(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return LeNet300100(math.prod(input_shape), num_classes)
