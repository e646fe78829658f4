"""CIFAR-style ResNets: ResNet-18 (basic blocks) and ResNet-101 (bottlenecks) for 32×32 inputs.

Both use a 3×3 stride-1 stem and no max-pool (the paper's CIFAR and Tiny ImageNet variants), convs
without bias (BatchNorm follows), a 1×1 conv + BN shortcut where the shape changes, global average
pooling and one linear layer `fc`. Every conv, shortcuts included, and `fc` are prunable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from sddlab.errors import ConfigError
from sddlab.models.registry import register_model

if TYPE_CHECKING:  # type hints only: the config validates names against this package
    from sddlab.config import ModelConfig


def scaled(channels: int, width: float) -> int:
    """A channel count times the width multiplier, at least 1."""
    return max(1, round(channels * width))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class BasicBlock(nn.Module):
    """Two 3×3 convs (the first may stride) plus the shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_channels, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (the stride sits here, as torchvision's v1.5), 1×1 expand ×4, plus the shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv1/bn1, stages layer1..layer4 (widths 64..512 × width, strides 1, 2, 2, 2), pool, fc."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        depths: tuple[int, ...],
        in_channels: int,
        num_classes: int,
        width: float = 1.0,
    ):
        super().__init__()
        channels = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        for stage, depth in enumerate(depths):
            planes, blocks = scaled(64 * 2**stage, width), []
            for k in range(depth):
                blocks.append(block(channels, planes, 2 if stage > 0 and k == 0 else 1))
                channels = planes * block.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
        self.stages = len(depths)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for stage in range(self.stages):
            x = getattr(self, f"layer{stage + 1}")(x)
        return self.fc(self.pool(x).flatten(1))


def image_channels(name: str, input_shape: tuple[int, ...]) -> int:
    """The channel count of (C, H, W) image input; anything else is a configuration error."""
    if len(input_shape) != 3:
        raise ConfigError("model.name", name, f"a model for data of shape {tuple(input_shape)}: {name} needs C×H×W")
    return input_shape[0]


@register_model("resnet18", "CIFAR ResNet-18 (3x3 stem, no max-pool); every conv and fc pruned")
def build_resnet18(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    channels = image_channels(config.name, input_shape)
    return ResNet(BasicBlock, (2, 2, 2, 2), channels, num_classes, config.width)


@register_model("resnet101", "ResNet-101 with bottlenecks, 3x3 stem, no max-pool (Tiny ImageNet at 32x32)")
def build_resnet101(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    channels = image_channels(config.name, input_shape)
    return ResNet(Bottleneck, (3, 4, 23, 3), channels, num_classes, config.width)
