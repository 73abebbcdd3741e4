"""Segmentation networks: an encoder from the ``mobilenet`` space plus a light head.

The head is LR-ASPP-like (MobileNetV3's segmentation head, simplified): a 1x1 conv + BN + ReLU
branch gated by a global-pooling branch, then a 1x1 classifier; logits are upsampled
bilinearly to the input size. The encoder keeps the classification network's names
(``stem``, ``layers.<i>``), so supernet weights and classification weights fit it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hwnas.spaces.blocks import init_weights, make_block, make_stem
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.types import Genotype

__all__ = ["SegmentationHead", "SegmentationNetwork", "build_segmentation_network"]


class SegmentationHead(nn.Module):
    """``classifier(relu(bn(conv1x1(x))) * sigmoid(conv1x1(avgpool(x))))``."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 64) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, channels, 1), nn.Sigmoid()
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.project(x) * self.gate(x))


class SegmentationNetwork(nn.Module):
    """``stem -> layers -> head``, logits upsampled to the input's height and width."""

    def __init__(self, stem: nn.Module, layers: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        out = self.stem(x)
        for layer in self.layers:
            out = layer(out)
        return F.interpolate(self.head(out), size=size, mode="bilinear", align_corners=False)


def make_segmentation_head(space: MobileNetSpace, num_classes: int) -> SegmentationHead:
    return SegmentationHead(space.slot_specs()[-1].out_channels, num_classes)


def build_segmentation_network(
    space: MobileNetSpace, genotype: Genotype, *, num_classes: int, in_channels: int = 3
) -> SegmentationNetwork:
    """A freshly initialised segmentation network of ``genotype``."""
    layers = [
        make_block(s.choice, s.in_channels, s.out_channels, s.stride)
        for s in space.layer_specs(genotype)
    ]
    network = SegmentationNetwork(
        make_stem(in_channels, space.stem_out_channels, space.stem_stride),
        layers,
        make_segmentation_head(space, num_classes),
    )
    init_weights(network)
    return network
