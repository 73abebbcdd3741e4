"""The NAS-Bench-Macro network (``Network`` in xiusu/NAS-Bench-Macro ``train/model.py``).

Module and attribute names follow the reference implementation, so that its state dicts load
unchanged. The layers run in the order they are registered, which the benchmark's FLOPs count
(a walk over ``model.modules()``) relies on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Identity(nn.Module):
    """Identity; a 1x1 convolution and BatchNorm when the stride or the width changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.downsample is None else self.downsample(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, k x k depthwise, 1x1 projection, each with BatchNorm.

    The expansion is omitted when ``expansion`` is 1; the residual sum is used when input and
    output shapes agree.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expansion: int) -> None:
        super().__init__()
        hidden = round(c_in * expansion)
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [
                nn.Conv2d(c_in, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
            ]
        layers += [
            nn.Conv2d(
                hidden, hidden, kernel, stride, padding=kernel // 2, groups=hidden, bias=False
            ),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out + x if self.use_shortcut else out


class MacroNetwork(nn.Module):
    """Stem, the searchable layers, 1x1 head convolution, global average pool, classifier."""

    def __init__(
        self,
        layers: Sequence[tuple[int, int, int, int, int]],
        *,
        stem_channels: int,
        head_channels: int,
        num_classes: int,
        in_channels: int = 3,
    ) -> None:
        """``layers``: (input channels, output channels, stride, kernel, expansion) each;
        kernel 0 means identity."""
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        )
        self.features = nn.Sequential(
            *(
                Identity(c_in, c_out, stride)
                if kernel == 0
                else InvertedResidual(c_in, c_out, stride, kernel, expansion)
                for c_in, c_out, stride, kernel, expansion in layers
            )
        )
        channels = layers[-1][1] if layers else stem_channels
        self.out = nn.Sequential(
            nn.Conv2d(channels, head_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.out(self.features(self.stem(x)))
        return self.classifier(x.flatten(1))
