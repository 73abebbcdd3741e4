"""Torch modules of the ``chain`` space (imported by :meth:`ChainSpace.build` on first use)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from hwnas.spaces.chain import ChainLayer


class ChainConv(nn.Module):
    """``relu(bn(conv(x)) + sum of bn(conv1x1(node)) over skip sources)``.

    The skip projections live in ``skips`` under ``n<source>``; summing before the ReLU
    keeps every node non-negative, which identity-initialised inserted layers rely on.
    """

    def __init__(self, in_channels: int, layer: ChainLayer, source_channels: Sequence[int]) -> None:
        super().__init__()
        self.sources = tuple(layer.skips)
        self.conv = nn.Conv2d(
            in_channels, layer.channels, layer.kernel, padding=layer.kernel // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(layer.channels)
        self.skips = nn.ModuleDict(
            {
                f"n{source}": nn.Sequential(
                    OrderedDict(
                        conv=nn.Conv2d(channels, layer.channels, 1, bias=False),
                        bn=nn.BatchNorm2d(layer.channels),
                    )
                )
                for source, channels in zip(self.sources, source_channels)
            }
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, nodes: Sequence[torch.Tensor | None]) -> torch.Tensor:
        out = self.bn(self.conv(x))
        for source, projection in zip(self.sources, self.skips.values()):
            out = out + projection(nodes[source])
        return self.act(out)


class ChainNetwork(nn.Module):
    """``layers`` (ChainConv or MaxPool2d) -> global average pool -> ``classifier``."""

    def __init__(self, layers: Sequence[ChainLayer], *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        channels = [in_channels]
        modules: list[nn.Module] = []
        for layer in layers:
            if layer.is_conv:
                sources = [channels[s] for s in layer.skips]
                modules.append(ChainConv(channels[-1], layer, sources))
                channels.append(layer.channels)
            else:
                modules.append(nn.MaxPool2d(2, 2))
                channels.append(channels[-1])
        self.layers = nn.ModuleList(modules)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels[-1], num_classes)
        # Only nodes that a skip reads are kept during the forward pass.
        self.kept = frozenset(s for layer in layers for s in layer.skips)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [None]
        for index, layer in enumerate(self.layers, start=1):
            x = layer(x, nodes) if isinstance(layer, ChainConv) else layer(x)
            nodes.append(x if index in self.kept else None)
        return self.classifier(torch.flatten(self.pool(x), 1))


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
