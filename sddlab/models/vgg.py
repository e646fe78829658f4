"""VGG-16 as in OpenLTH (the paper's code): 13 conv+BN+ReLU blocks, max-pools, average pool, one linear.

Convs are 3×3, padding 1, with bias. After the last block a 2×2 average pool (written as a global
average pool: the same at 32×32 input, where the map is 2×2) feeds `fc`, which is not pruned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from sddlab.models.registry import register_model
from sddlab.models.resnet import image_channels, scaled

if TYPE_CHECKING:  # type hints only: the config validates names against this package
    from sddlab.config import ModelConfig

VGG16_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class ConvBlock(nn.Module):
    """3×3 conv (with bias), BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class VGG(nn.Module):
    """Conv blocks and 2×2 max-pools from a plan ('M' = pool), global average pool, linear `fc`."""

    def __init__(self, plan: tuple, in_channels: int, num_classes: int, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in plan:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers.append(ConvBlock(channels, scaled(item, width)))
                channels = scaled(item, width)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


@register_model("vgg16", "VGG-16 (OpenLTH): 13 conv+BN, avg-pool, linear fc (fc not pruned)", default_ignored=("fc",))
def build_vgg16(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return VGG(VGG16_PLAN, image_channels(config.name, input_shape), num_classes, config.width)
