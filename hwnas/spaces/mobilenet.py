"""FBNet-style search space: a chain of inverted-residual blocks, one block choice per layer.

The network is ``stem -> searchable layers -> head``; the layers are grouped in stages of
``[out_channels, first_stride, num_layers]`` as in FBNet and MobileNetV2. Each layer picks one
block from FBNet's set (``k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1, k5_e1_g2, k5_e3, k5_e6, skip``),
optionally with squeeze-excitation (``_se``) and hardswish (``_hs``) variants.

Canonical text (timm style): one token per layer in network order, joined by ``-``, each
``ir_k<kernel>_e<expansion>[_g<groups>][_se][_hs]`` or ``skip``, e.g.
``ir_k3_e1-ir_k5_e6-skip-ir_k3_e3_se``. :meth:`MobileNetSpace.parse` also reads tokens without
the ``ir_`` prefix, in any letter case, with spaces around them.

The per-layer structure is explicit (:class:`SlotSpec`, :class:`LayerSpec`, :class:`BlockChoice`)
so latency tables, supernets and network morphisms can share it. This module is pure Python:
the torch blocks live in :mod:`hwnas.spaces.blocks`, imported by :meth:`MobileNetSpace.build`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from hwnas.errors import GenotypeError
from hwnas.spaces.base import CategoricalSpace, LayerInfo
from hwnas.spaces.mobilenet_spec import (
    BASE_BLOCKS,
    PRESETS,
    SKIP,
    BlockChoice,
    LayerSpec,
    Preset,
    SlotSpec,
    _conv_out,
    make_divisible,
    parse_choice,
)
from hwnas.types import Genotype

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "BASE_BLOCKS",
    "PRESETS",
    "SKIP",
    "BlockChoice",
    "LayerSpec",
    "MobileNetSpace",
    "Preset",
    "SlotSpec",
    "make_divisible",
    "parse_choice",
]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_stages(stages: Any) -> tuple[tuple[int, int, int], ...]:
    if isinstance(stages, (str, bytes)) or not isinstance(stages, Sequence) or not stages:
        raise ValueError(
            "stages must be a non-empty list of [out_channels, first_stride, num_layers] rows, "
            f"got {stages!r}"
        )
    rows = []
    for i, row in enumerate(stages):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != 3:
            raise ValueError(
                f"stage {i} must be [out_channels, first_stride, num_layers], got {row!r}"
            )
        channels = _positive_int(f"stage {i} out_channels", row[0])
        stride = row[1]
        if stride not in (1, 2) or isinstance(stride, bool):
            raise ValueError(f"stage {i} first_stride must be 1 or 2, got {stride!r}")
        layers = _positive_int(f"stage {i} num_layers", row[2])
        rows.append((channels, int(stride), layers))
    return tuple(rows)


class MobileNetSpace(CategoricalSpace):
    """FBNet-style chain of inverted-residual blocks (see the module docstring).

    ``None`` options take their value from ``preset``. Channels (stem, stages) are scaled by
    ``width_mult`` and rounded to a multiple of 8; the head is scaled only when
    ``width_mult > 1`` (as torchvision's MobileNetV2) so thin networks keep a wide classifier.
    With ``se`` / ``hswish`` every block also comes with ``_se`` / ``_hs`` variants.
    """

    name: ClassVar[str] = "mobilenet"
    PRESETS: ClassVar[Mapping[str, Preset]] = PRESETS

    def __init__(
        self,
        *,
        preset: str = "cifar",
        stages: Sequence[Sequence[int]] | None = None,
        stem_channels: int | None = None,
        stem_stride: int | None = None,
        head_channels: int | None = None,
        width_mult: float = 1.0,
        resolution: int | None = None,
        se: bool = False,
        hswish: bool = False,
        dropout: float = 0.0,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        base = PRESETS[preset]
        self.preset = preset
        self.stages = _check_stages(base.stages if stages is None else stages)
        self.stem_channels = _positive_int(
            "stem_channels", base.stem_channels if stem_channels is None else stem_channels
        )
        self.stem_stride = base.stem_stride if stem_stride is None else stem_stride
        if self.stem_stride not in (1, 2) or isinstance(self.stem_stride, bool):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride!r}")
        self.head_channels = _positive_int(
            "head_channels", base.head_channels if head_channels is None else head_channels
        )
        if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)):
            raise ValueError(f"width_mult must be a number, got {width_mult!r}")
        if not (math.isfinite(width_mult) and width_mult > 0):
            raise ValueError(f"width_mult must be positive, got {width_mult!r}")
        self.width_mult = float(width_mult)
        self.resolution = _positive_int(
            "resolution", base.resolution if resolution is None else resolution
        )
        if not isinstance(se, bool) or not isinstance(hswish, bool):
            raise ValueError(f"se and hswish must be true or false, got {se!r} and {hswish!r}")
        self.se = se
        self.hswish = hswish
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)

        total_stride = self.stem_stride * math.prod(s for _, s, _ in self.stages)
        if self.resolution < total_stride:
            raise ValueError(
                f"resolution {self.resolution} is too small for the total stride {total_stride} "
                f"of the stem and stages; use resolution >= {total_stride} or fewer stride-2 "
                "stages"
            )
        self.input_shape = (3, self.resolution, self.resolution)
        #: Channels after scaling and rounding.
        self.stem_out_channels = make_divisible(self.stem_channels * self.width_mult)
        self.head_out_channels = make_divisible(self.head_channels * max(1.0, self.width_mult))
        self.block_choices = self._block_choices()
        self._slots = self._make_slots()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"MobileNetSpace({args})"

    def config(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "stages": [list(row) for row in self.stages],
            "stem_channels": self.stem_channels,
            "stem_stride": self.stem_stride,
            "head_channels": self.head_channels,
            "width_mult": self.width_mult,
            "resolution": self.resolution,
            "se": self.se,
            "hswish": self.hswish,
            "dropout": self.dropout,
        }

    # -- structure -------------------------------------------------------------------------
    def _block_choices(self) -> tuple[str, ...]:
        # Variants are appended after the plain blocks, so a block keeps its index whatever
        # the se / hswish options are, and skip stays last.
        variants = [""]
        if self.se:
            variants.append("_se")
        if self.hswish:
            variants.append("_hs")
        if self.se and self.hswish:
            variants.append("_se_hs")
        return tuple(block + suffix for suffix in variants for block in BASE_BLOCKS)

    def _make_slots(self) -> tuple[SlotSpec, ...]:
        slots: list[SlotSpec] = []
        channels = self.stem_out_channels
        resolution = _conv_out(self.resolution, self.stem_stride)
        for stage, (width, first_stride, num_layers) in enumerate(self.stages):
            out_channels = make_divisible(width * self.width_mult)
            for j in range(num_layers):
                stride = first_stride if j == 0 else 1
                # Skip is the identity, so only where the block keeps shape.
                identity_ok = stride == 1 and channels == out_channels
                choices = self.block_choices + ((SKIP,) if identity_ok else ())
                slots.append(
                    SlotSpec(
                        index=len(slots),
                        stage=stage,
                        in_channels=channels,
                        out_channels=out_channels,
                        stride=stride,
                        input_resolution=resolution,
                        choices=choices,
                    )
                )
                channels = out_channels
                resolution = _conv_out(resolution, stride)
        return tuple(slots)

    @property
    def num_layers(self) -> int:
        return len(self._slots)

    def slot_specs(self) -> list[SlotSpec]:
        """Every searchable position with its shapes and allowed choices, in network order."""
        return list(self._slots)

    def layer_specs(self, genotype: Genotype) -> list[LayerSpec]:
        """The layers of ``genotype`` with their blocks and shapes, in network order."""
        specs = []
        for slot, choice in zip(self._slots, self._checked_choices(genotype)):
            block = parse_choice(choice)
            specs.append(
                LayerSpec(
                    index=slot.index,
                    stage=slot.stage,
                    choice=choice,
                    in_channels=slot.in_channels,
                    out_channels=slot.out_channels,
                    stride=slot.stride,
                    input_resolution=slot.input_resolution,
                    kernel=block.kernel,
                    expansion=block.expansion,
                    groups=block.groups,
                    se=block.se,
                    hswish=block.hswish,
                )
            )
        return specs

    def layers(self, genotype: Genotype) -> list[LayerInfo]:
        """Sequence view; ``op`` is ``skip`` or ``ir`` plus ``_se`` / ``_hs`` when present."""
        infos = []
        for spec in self.layer_specs(genotype):
            op = SKIP if spec.is_skip else "ir" + "_se" * spec.se + "_hs" * spec.hswish
            infos.append(
                LayerInfo(
                    op=op,
                    kernel=spec.kernel,
                    expansion=float(spec.expansion),
                    channels=spec.out_channels,
                    stride=spec.stride,
                    groups=spec.groups,
                )
            )
        return infos

    def _checked_choices(self, genotype: Genotype) -> list[str]:
        if genotype.space != self.name:
            raise GenotypeError(
                f"genotype '{genotype.key()}' belongs to space '{genotype.space}', "
                f"not '{self.name}'"
            )
        return self.from_spec(genotype.spec)

    # -- canonical form --------------------------------------------------------------------
    def options(self) -> tuple[tuple[str, ...], ...]:
        return tuple(slot.choices for slot in self._slots)

    def to_spec(self, choices: Sequence[str]) -> str:
        return "-".join(choices)

    def from_spec(self, spec: str) -> list[str]:
        tokens = spec.split("-")
        if len(tokens) != len(self._slots):
            example = "-".join(slot.choices[0] for slot in self._slots)
            raise GenotypeError(
                f"'{spec}' has {len(tokens)} layers but this mobilenet space (stages "
                f"{[list(r) for r in self.stages]}) has {len(self._slots)}; write "
                f"{len(self._slots)} blocks joined by '-', e.g. '{example}'"
            )
        choices = []
        for slot, token in zip(self._slots, tokens):
            try:
                name = parse_choice(token).name
            except GenotypeError as exc:
                raise GenotypeError(
                    f"'{spec}': layer {slot.index} ({self._describe(slot)}): {exc}; "
                    f"allowed there: {', '.join(slot.choices)}"
                ) from None
            if name not in slot.choices:
                raise GenotypeError(
                    f"'{spec}': layer {slot.index} ({self._describe(slot)}): "
                    f"{self._why_not(name)}; allowed there: {', '.join(slot.choices)}"
                )
            choices.append(name)
        return choices

    def _describe(self, slot: SlotSpec) -> str:
        return (
            f"0-based, stage {slot.stage}, {slot.in_channels}->{slot.out_channels} channels, "
            f"stride {slot.stride}"
        )

    def _why_not(self, name: str) -> str:
        if name == SKIP:
            return "'skip' is the identity and cannot change channels or stride"
        block = parse_choice(name)
        hints = []
        if block.se and not self.se:
            hints.append("se=true")
        if block.hswish and not self.hswish:
            hints.append("hswish=true")
        if hints:
            return f"block '{name}' needs the space option {' and '.join(hints)}"
        return f"block '{name}' is not one of this space's blocks"

    # -- networks --------------------------------------------------------------------------
    def build(self, genotype: Genotype, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        from hwnas.spaces.blocks import build_network

        return build_network(
            self.layer_specs(genotype),
            stem_channels=self.stem_out_channels,
            stem_stride=self.stem_stride,
            head_channels=self.head_out_channels,
            num_classes=num_classes,
            in_channels=in_channels,
            dropout=self.dropout,
        )
