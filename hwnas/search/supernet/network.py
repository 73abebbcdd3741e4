"""The supernet of the ``mobilenet`` space: every searchable layer holds all its candidate blocks.

``Supernet.forward(x, weights, active)`` runs ``stem -> mixed layers -> head`` where layer ``l``
outputs ``sum_j weights[l][j] * op_j(x)`` over the candidate indices ``active[l]`` (all of them
in the full relaxation, one or two in path-sampling mode). Candidate ``j`` of layer ``l`` is
exactly the block that ``MobileNetSpace.build`` puts there, with its own weights (FBNet does not
share weights between candidates), so a genotype's stand-alone network is the supernet with
that path active: :func:`extract_state` maps ``layers.l.ops.j.*`` to ``layers.l.*``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hwnas.spaces.blocks import init_weights, make_block, make_stem
from hwnas.spaces.mobilenet import MobileNetSpace, SlotSpec
from hwnas.types import Genotype

__all__ = ["MixedLayer", "Supernet", "extract_state", "path_indices"]


class MixedLayer(nn.Module):
    """All candidate blocks of one slot, in the order of ``slot.choices``."""

    def __init__(self, slot: SlotSpec) -> None:
        super().__init__()
        self.choices = tuple(slot.choices)
        self.ops = nn.ModuleList(
            make_block(c, slot.in_channels, slot.out_channels, slot.stride) for c in slot.choices
        )

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, active: Sequence[int]
    ) -> torch.Tensor:
        out: torch.Tensor | None = None
        for j in active:
            term = weights[j] * self.ops[j](x)
            out = term if out is None else out + term
        assert out is not None, "a mixed layer needs at least one active candidate"
        return out


class Supernet(nn.Module):
    """``stem -> MixedLayer per slot -> head``; ``upsample`` resizes the output to the input
    (dense prediction heads), as the stand-alone segmentation network does."""

    def __init__(
        self,
        space: MobileNetSpace,
        *,
        head: nn.Module,
        in_channels: int = 3,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.space = space
        self.slots = space.slot_specs()
        self.stem = make_stem(in_channels, space.stem_out_channels, space.stem_stride)
        self.layers = nn.ModuleList(MixedLayer(slot) for slot in self.slots)
        self.head = head
        self.upsample = upsample
        init_weights(self)

    @property
    def num_choices(self) -> list[int]:
        return [len(slot.choices) for slot in self.slots]

    def forward(
        self,
        x: torch.Tensor,
        weights: Sequence[torch.Tensor],
        active: Sequence[Sequence[int]] | None = None,
    ) -> torch.Tensor:
        size = x.shape[-2:]
        out = self.stem(x)
        for i, layer in enumerate(self.layers):
            chosen = range(len(layer.ops)) if active is None else active[i]
            out = layer(out, weights[i], chosen)
        out = self.head(out)
        if self.upsample:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out

    def one_hot(self, genotype: Genotype) -> tuple[list[torch.Tensor], list[list[int]]]:
        """Weights and active candidates that run exactly ``genotype``'s path."""
        indices = path_indices(self.space, genotype)
        weights = []
        device = self.stem[0].weight.device
        for n, j in zip(self.num_choices, indices):
            w = torch.zeros(n, device=device)
            w[j] = 1.0
            weights.append(w)
        return weights, [[j] for j in indices]

    def extract(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The stand-alone network's ``state_dict`` of ``genotype`` (see :func:`extract_state`)."""
        return extract_state(self.state_dict(), self.space, genotype)


def path_indices(space: MobileNetSpace, genotype: Genotype) -> list[int]:
    """The candidate index of each layer of ``genotype`` (positions in ``slot.choices``)."""
    return [int(i) for i in space.to_indices(genotype)]


def extract_state(
    supernet_state: Mapping[str, torch.Tensor],
    space: MobileNetSpace,
    genotype: Genotype,
    *,
    keep: Callable[[str], bool] | None = None,
) -> dict[str, torch.Tensor]:
    """The stand-alone network's ``state_dict`` of ``genotype``, cut from the supernet's.

    Stem and head keep their names; ``layers.l.ops.j.<rest>`` becomes ``layers.l.<rest>`` for
    the chosen ``j`` of each layer. Skip candidates have no tensors.
    """
    indices = path_indices(space, genotype)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in supernet_state.items():
        if name.startswith("layers."):
            _, layer, ops, choice, rest = name.split(".", 4)
            if ops != "ops" or int(choice) != indices[int(layer)]:
                continue
            name = f"layers.{layer}.{rest}"
        if keep is None or keep(name):
            out[name] = tensor.detach().to("cpu").clone()
    return out
