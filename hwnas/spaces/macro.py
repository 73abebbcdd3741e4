"""NAS-Bench-Macro: a chain of 8 searchable layers, 3 choices each (6,561 networks).

The canonical form is the benchmark's 8-character key, one digit per layer: ``0`` identity,
``1`` MobileNetV2 block with kernel 3 and expansion 3, ``2`` with kernel 5 and expansion 6,
e.g. ``"02012100"``. This module does not import torch; :meth:`MacroSpace.build` imports the
network module on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hwnas.errors import GenotypeError
from hwnas.spaces.base import CategoricalSpace, LayerInfo
from hwnas.types import Genotype

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CHOICES", "STAGES", "MacroSpace"]

#: Digit -> (op, kernel, expansion).
CHOICES: dict[str, tuple[str, int, int]] = {
    "0": ("identity", 0, 0),
    "1": ("ir", 3, 3),
    "2": ("ir", 5, 6),
}
#: Searchable layers per stage; the first of each stage halves the resolution, doubles width.
STAGES: tuple[int, ...] = (2, 3, 3)
_LENGTH = sum(STAGES)
_FORM = (
    f"expected {_LENGTH} digits, one per layer: 0 (identity), 1 (MobileNetV2 block, kernel 3, "
    "expansion 3) or 2 (kernel 5, expansion 6), e.g. '02012100'"
)


def layer_plan(stem_channels: int) -> list[tuple[int, int, int]]:
    """(input channels, output channels, stride) of each searchable layer."""
    plan = []
    channels = stem_channels
    for depth in STAGES:
        for position in range(depth):
            if position == 0:
                plan.append((channels, 2 * channels, 2))
                channels *= 2
            else:
                plan.append((channels, channels, 1))
    return plan


class MacroSpace(CategoricalSpace):
    """The NAS-Bench-Macro space and its network.

    ``stem_channels`` (32 in the benchmark) is the stem's width, doubled by each of the three
    stages; ``head_channels`` (1280) is the width of the last 1x1 convolution.
    """

    name = "macro"
    input_shape = (3, 32, 32)

    def __init__(self, *, stem_channels: int = 32, head_channels: int = 1280) -> None:
        for key, value in (("stem_channels", stem_channels), ("head_channels", head_channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        self.stem_channels = int(stem_channels)
        self.head_channels = int(head_channels)

    def config(self) -> dict[str, Any]:
        return {"stem_channels": self.stem_channels, "head_channels": self.head_channels}

    # -- canonical form --------------------------------------------------------------------
    def options(self) -> Sequence[Sequence[str]]:
        return [tuple(CHOICES)] * _LENGTH

    def to_spec(self, choices: Sequence[str]) -> str:
        return "".join(choices)

    def from_spec(self, spec: str) -> list[str]:
        text = spec.strip()
        if len(text) != _LENGTH:
            raise GenotypeError(f"'{spec}' has {len(text)} characters; {_FORM}")
        bad = sorted({c for c in text if c not in CHOICES})
        if bad:
            raise GenotypeError(f"'{spec}' contains {', '.join(map(repr, bad))}; {_FORM}")
        return list(text)

    # -- layers and networks ---------------------------------------------------------------
    def layers(self, genotype: Genotype) -> list[LayerInfo]:
        """The eight searchable layers in order (output channels, stride).

        An ``identity`` with stride 2 (first layer of a stage) is a 1x1 convolution and BatchNorm
        in the network; ``kernel`` and ``expansion`` are 0 for identities.
        """
        self.validate(genotype)
        out = []
        for digit, (_, c_out, stride) in zip(
            self.choices(genotype), layer_plan(self.stem_channels)
        ):
            op, kernel, expansion = CHOICES[digit]
            out.append(LayerInfo(op, kernel, float(expansion), c_out, stride))
        return out

    def build(self, genotype: Genotype, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        self.validate(genotype)
        from hwnas.spaces._macro_net import MacroNetwork

        layers = []
        for digit, (c_in, c_out, stride) in zip(
            self.choices(genotype), layer_plan(self.stem_channels)
        ):
            _, kernel, expansion = CHOICES[digit]
            layers.append((c_in, c_out, stride, kernel, expansion))
        return MacroNetwork(
            layers,
            stem_channels=self.stem_channels,
            head_channels=self.head_channels,
            num_classes=num_classes,
            in_channels=in_channels,
        )
