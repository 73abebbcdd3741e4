"""Torch building blocks of the ``mobilenet`` space: stem, inverted-residual block, head.

Every part has a stable attribute name (``expand``, ``shuffle``, ``depthwise``, ``se``,
``project``; ``stem``, ``layers``, ``head``) because supernets and network morphisms edit them.

Block layout (FBNet, Wu et al. 2019, fig. 3): 1x1 (grouped) expansion conv + BN + act, channel
shuffle when grouped, kxk depthwise conv with the stride + BN + act, optional squeeze-excitation,
1x1 (grouped) projection + BN, and a residual add when stride is 1 and channels are kept.
Unlike MobileNetV2, ``e1`` blocks keep their 1x1 expansion conv, as FBNet does: its ``e1_g2``
blocks need it to mix channels across groups, the costs then match FBNet's latency tables, and
every block has the same parts, so a morphism can widen ``e1`` into ``e3`` in place.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

from hwnas.spaces.mobilenet_spec import BlockChoice, LayerSpec, make_divisible, parse_choice

__all__ = [
    "ChannelShuffle",
    "InvertedResidual",
    "MobileNetNetwork",
    "build_network",
    "init_weights",
    "make_block",
    "make_head",
    "make_stem",
]


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: interleave the channels of ``groups`` groups.

    Written with unflatten/transpose/flatten rather than ``nn.ChannelShuffle`` so that it
    exports to ONNX and runs on the meta device.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, -1)).transpose(1, 2).flatten(1, 2)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class InvertedResidual(nn.Module):
    """An FBNet block; ``hidden_channels = in_channels * expansion``."""

    def __init__(
        self, choice: BlockChoice, in_channels: int, out_channels: int, stride: int
    ) -> None:
        super().__init__()
        if choice.is_skip:
            raise ValueError("a skip layer is nn.Identity; build it with make_block")
        hidden = in_channels * choice.expansion
        groups = choice.groups
        for what, channels in (("in", in_channels), ("hidden", hidden), ("out", out_channels)):
            if channels % groups:
                raise ValueError(
                    f"{choice.name}: {what} channels {channels} are not divisible by {groups} "
                    "groups"
                )
        act = nn.Hardswish if choice.hswish else nn.ReLU
        self.choice = choice
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden
        self.stride = stride
        self.expand = Conv2dNormActivation(
            in_channels, hidden, kernel_size=1, groups=groups, activation_layer=act
        )
        self.shuffle: nn.Module = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.depthwise = Conv2dNormActivation(
            hidden,
            hidden,
            kernel_size=choice.kernel,
            stride=stride,
            groups=hidden,
            activation_layer=act,
        )
        # MobileNetV3's SE: squeeze to a quarter, hard sigmoid gate (cheap, exports cleanly).
        self.se: nn.Module = (
            SqueezeExcitation(hidden, make_divisible(hidden // 4), scale_activation=nn.Hardsigmoid)
            if choice.se
            else nn.Identity()
        )
        self.project = Conv2dNormActivation(
            hidden, out_channels, kernel_size=1, groups=groups, activation_layer=None
        )
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.shuffle(self.expand(x)))))
        return x + out if self.use_residual else out

    def extra_repr(self) -> str:
        return (
            f"{self.choice.name}, {self.in_channels}->{self.out_channels}, stride={self.stride}, "
            f"residual={self.use_residual}"
        )


def make_block(
    choice: BlockChoice | str, in_channels: int, out_channels: int, stride: int
) -> nn.Module:
    """The module of one layer: ``nn.Identity`` for ``skip``, else an :class:`InvertedResidual`."""
    block = parse_choice(choice) if isinstance(choice, str) else choice
    if block.is_skip:
        if stride != 1 or in_channels != out_channels:
            raise ValueError(
                f"skip needs stride 1 and equal channels, got {in_channels}->{out_channels} "
                f"with stride {stride}"
            )
        return nn.Identity()
    return InvertedResidual(block, in_channels, out_channels, stride)


def make_stem(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """3x3 conv + BN + ReLU."""
    return Conv2dNormActivation(in_channels, out_channels, kernel_size=3, stride=stride)


def make_head(
    in_channels: int, head_channels: int, num_classes: int, dropout: float = 0.0
) -> nn.Sequential:
    """1x1 conv + BN + ReLU, global average pool, flatten, dropout, linear classifier."""
    return nn.Sequential(
        OrderedDict(
            conv=Conv2dNormActivation(in_channels, head_channels, kernel_size=1),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
            dropout=nn.Dropout(dropout),
            classifier=nn.Linear(head_channels, num_classes),
        )
    )


class MobileNetNetwork(nn.Module):
    """``stem -> layers (one module per searchable slot) -> head``."""

    def __init__(self, stem: nn.Module, layers: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs, BN to identity, small-normal linear layers, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def build_network(
    specs: Sequence[LayerSpec],
    *,
    stem_channels: int,
    stem_stride: int,
    head_channels: int,
    num_classes: int,
    in_channels: int = 3,
    dropout: float = 0.0,
) -> MobileNetNetwork:
    """A freshly initialised network from per-layer specs (see ``MobileNetSpace.layer_specs``)."""
    if not specs:
        raise ValueError("a network needs at least one layer spec")
    channels = stem_channels
    layers = []
    for spec in specs:
        if spec.in_channels != channels:
            raise ValueError(
                f"layer {spec.index} expects {spec.in_channels} input channels, gets {channels}"
            )
        layers.append(make_block(spec.choice, spec.in_channels, spec.out_channels, spec.stride))
        channels = spec.out_channels
    network = MobileNetNetwork(
        stem=make_stem(in_channels, stem_channels, stem_stride),
        layers=layers,
        head=make_head(channels, head_channels, num_classes, dropout),
    )
    init_weights(network)
    return network
