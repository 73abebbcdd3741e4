"""The NAS-Bench-201 network (``TinyNetwork`` with ``InferCell`` in D-X-Y/AutoDL-Projects).

Module and attribute names follow the reference implementation, so that a state dict saved
by it (e.g. NATS-Bench weights) loads into these modules unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from hwnas.spaces.nb201_cell import EDGES


class ReLUConvBN(nn.Module):
    """ReLU, k x k convolution (no bias), BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        # Not in place: the cell feeds the same node to several edges.
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Pooling(nn.Module):
    """3 x 3 average pooling that ignores the padding."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The 'none' edge: zeros of the input's shape, no parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def make_op(name: str, channels: int) -> nn.Module:
    """One cell edge (stride 1, ``channels`` in and out)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if name == "avg_pool_3x3":
        return Pooling()
    raise ValueError(f"unknown NAS-Bench-201 operation '{name}'")


class InferCell(nn.Module):
    """A 4-node cell: node j is the sum of op(j, i)(node i) over i < j; the output is node 3."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make_op(op, channels) for op in ops)
        # For each node 1..3, its (edge index, source node) pairs.
        self.node_inputs = [
            [(k, src) for k, (to, src) in enumerate(EDGES) if to == node] for node in (1, 2, 3)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for inputs in self.node_inputs:
            total = self.layers[inputs[0][0]](nodes[inputs[0][1]])
            for k, src in inputs[1:]:
                total = total + self.layers[k](nodes[src])
            nodes.append(total)
        return nodes[-1]


class ResNetBasicblock(nn.Module):
    """The reduction block between stages: two ReLU-conv-BN, shortcut avg-pool + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def add_skeleton(
    network: nn.Module,
    make_cell: Callable[[int], nn.Module],
    *,
    channels: int,
    cells_per_stage: int,
    num_classes: int,
    in_channels: int,
) -> None:
    """Give ``network`` the benchmark's skeleton around its cells (``make_cell(width)``): stem,
    three stages at C, 2C, 4C with two reduction blocks, BN-ReLU, pooling, classifier. One
    builder for the stand-alone network and the cell supernet keeps their state names equal."""
    c = channels
    network.stem = nn.Sequential(
        nn.Conv2d(in_channels, c, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c)
    )
    cells: list[nn.Module] = []
    for stage, width in enumerate((c, 2 * c, 4 * c)):
        if stage > 0:
            cells.append(ResNetBasicblock(width // 2, width, 2))
        cells.extend(make_cell(width) for _ in range(cells_per_stage))
    network.cells = nn.ModuleList(cells)
    network.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
    network.global_pooling = nn.AdaptiveAvgPool2d(1)
    network.classifier = nn.Linear(4 * c, num_classes)


class TinyNetwork(nn.Module):
    """Stem, three stages of N cells at C, 2C, 4C with two reduction blocks, BN-ReLU, classifier."""

    def __init__(
        self,
        ops: Sequence[str],
        *,
        channels: int,
        cells_per_stage: int,
        num_classes: int,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        add_skeleton(
            self,
            lambda width: InferCell(ops, width),
            channels=channels,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
            in_channels=in_channels,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))
