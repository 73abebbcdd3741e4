"""The ``mobilenet`` space's per-layer vocabulary: block choices, slots, layers, presets.

Pure Python, shared by the space, its torch blocks, latency tables, supernets and morphisms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hwnas.errors import GenotypeError

SKIP = "skip"
#: FBNet's blocks in FBNet's order (``skip`` comes last in every position that allows it).
BASE_BLOCKS: tuple[str, ...] = (
    "ir_k3_e1",
    "ir_k3_e1_g2",
    "ir_k3_e3",
    "ir_k3_e6",
    "ir_k5_e1",
    "ir_k5_e1_g2",
    "ir_k5_e3",
    "ir_k5_e6",
)
_BLOCK_RE = re.compile(r"(?:ir_)?k(\d+)_e(\d+)(?:_g(\d+))?(_se)?(_hs)?")
_BLOCK_FORM = "'skip' or 'ir_k<kernel>_e<expansion>[_g<groups>][_se][_hs]', e.g. ir_k3_e6"


def _conv_out(resolution: int, stride: int) -> int:
    # A kxk conv with padding k // 2 (odd k) maps H to ceil(H / stride).
    return -(-resolution // stride)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor``, never below 90% of it (torchvision's rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockChoice:
    """One layer's block, decoded from its name. ``skip`` has kernel 0 and expansion 0."""

    kernel: int = 0
    expansion: int = 0
    groups: int = 1
    se: bool = False
    hswish: bool = False
    is_skip: bool = False

    def __post_init__(self) -> None:
        if self.is_skip:
            if self.kernel or self.expansion or self.groups != 1 or self.se or self.hswish:
                raise ValueError("a skip block has no kernel, expansion, groups, se or hswish")
            return
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd number, got {self.kernel}")
        if self.expansion < 1:
            raise ValueError(f"expansion must be a positive integer, got {self.expansion}")
        if self.groups < 1:
            raise ValueError(f"groups must be a positive integer, got {self.groups}")

    @property
    def name(self) -> str:
        """Canonical name, e.g. ``ir_k3_e1_g2_se``."""
        if self.is_skip:
            return SKIP
        name = f"ir_k{self.kernel}_e{self.expansion}"
        if self.groups > 1:
            name += f"_g{self.groups}"
        if self.se:
            name += "_se"
        if self.hswish:
            name += "_hs"
        return name


def parse_choice(choice: str) -> BlockChoice:
    """Decode a block name (``ir_k5_e1_g2_se``, ``k3_e6``, ``skip``); GenotypeError if unknown."""
    token = choice.strip().lower()
    if token == SKIP:
        return BlockChoice(is_skip=True)
    match = _BLOCK_RE.fullmatch(token)
    if match is None:
        raise GenotypeError(f"unknown block '{choice}'; write {_BLOCK_FORM}")
    kernel, expansion, groups, se, hswish = match.groups()
    try:
        return BlockChoice(
            kernel=int(kernel),
            expansion=int(expansion),
            groups=int(groups) if groups else 1,
            se=bool(se),
            hswish=bool(hswish),
        )
    except ValueError as exc:
        raise GenotypeError(f"block '{choice}': {exc}") from None


@dataclass(frozen=True)
class SlotSpec:
    """One searchable position, independent of a genotype. Resolutions are H = W in pixels."""

    index: int
    stage: int
    in_channels: int
    out_channels: int
    stride: int
    input_resolution: int
    choices: tuple[str, ...]

    @property
    def output_resolution(self) -> int:
        return _conv_out(self.input_resolution, self.stride)

    @property
    def allows_skip(self) -> bool:
        return SKIP in self.choices


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a genotype: its block and the shapes it sees (a latency-table key)."""

    index: int
    stage: int
    choice: str
    in_channels: int
    out_channels: int
    stride: int
    input_resolution: int
    kernel: int
    expansion: int
    groups: int
    se: bool
    hswish: bool

    @property
    def is_skip(self) -> bool:
        return self.choice == SKIP

    @property
    def block(self) -> BlockChoice:
        return parse_choice(self.choice)

    @property
    def output_resolution(self) -> int:
        return _conv_out(self.input_resolution, self.stride)


@dataclass(frozen=True)
class Preset:
    """A stage table with its stem, head and input resolution."""

    stages: tuple[tuple[int, int, int], ...]
    stem_channels: int
    stem_stride: int
    head_channels: int
    resolution: int


#: ``cifar``: CPU-friendly, for 32x32 inputs (total stride 8, so the head sees 4x4).
#: ``fbnet``: FBNet's ImageNet table (Wu et al. 2019, table 1): 22 searchable layers at 224x224.
PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "cifar": Preset(
            stages=((16, 1, 1), (24, 2, 2), (32, 2, 2), (64, 2, 2), (96, 1, 2), (160, 1, 1)),
            stem_channels=16,
            stem_stride=1,
            head_channels=256,
            resolution=32,
        ),
        "fbnet": Preset(
            stages=(
                (16, 1, 1),
                (24, 2, 4),
                (32, 2, 4),
                (64, 2, 4),
                (112, 1, 4),
                (184, 2, 4),
                (352, 1, 1),
            ),
            stem_channels=16,
            stem_stride=2,
            head_channels=1984,
            resolution=224,
        ),
    }
)
