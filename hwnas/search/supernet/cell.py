"""The weight-sharing network of the ``nb201`` cell space: every cell edge holds all 5 operations.

:class:`CellSupernet` is ``NB201Space.build``'s ``TinyNetwork`` (same stem, reduction blocks,
head and module names) whose cells are :class:`MixedCell`: edge ``k`` of every cell computes
``sum_j w[k, j] * op_j(x)`` over the operations of :data:`hwnas.spaces.nb201.OPS` with a
non-zero weight. NAS-Bench-201 repeats one cell, so one ``(6, 5)`` weight matrix drives every
cell (each cell still has its own operation weights, as in the stand-alone network).

Operations whose weight is exactly zero are not run, so a one-hot row runs only its chosen
operation (ENAS, GDAS, path sampling) and a soft row runs them all (DARTS, SNAS). With one-hot
weights the supernet computes exactly ``NB201Space.build(genotype)`` loaded with
:meth:`CellSupernet.extract_state` (bit for bit, in train and eval mode; tested).

``CellSupernet.aux_skip`` (DARTS-'s auxiliary skip, :mod:`hwnas.search.supernet.robust`) adds
``aux_skip * x`` to every edge's output; it is 0 (nothing added) except inside the supernet
trainer's weight and theta steps of ``robust=darts-minus``. It is a plain float, not a buffer,
so it never enters a ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hwnas.spaces._nb201_net import add_skeleton, make_op
from hwnas.spaces.nb201 import EDGES, OPS, NB201Space
from hwnas.types import Genotype

__all__ = ["CellSupernet", "MixedCell", "MixedEdge", "extract_cell_state", "one_hot"]

#: Shape of the edge weights: one row per cell edge, one column per operation (OPS order).
WEIGHTS_SHAPE = (len(EDGES), len(OPS))


class MixedEdge(nn.Module):
    """One cell edge with every operation of :data:`OPS`, in that order."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(make_op(op, channels) for op in OPS)

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, active: Sequence[int], beta: float = 0.0
    ) -> torch.Tensor:
        """``sum_j weights[j] * op_j(x)`` over ``active``, plus ``beta * x`` (DARTS-'s auxiliary
        skip) when ``beta`` is not 0."""
        out: torch.Tensor | None = None
        for j in active:
            term = weights[j] * self.ops[j](x)
            out = term if out is None else out + term
        assert out is not None, "an edge needs at least one operation with a non-zero weight"
        if beta:  # exactly 0 adds nothing, so one-hot paths stay bit-for-bit stand-alone
            out = out + beta * x
        return out


class MixedCell(nn.Module):
    """The 4-node cell of ``InferCell`` with a :class:`MixedEdge` on each of its 6 edges."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MixedEdge(channels) for _ in EDGES)
        # For each node 1..3, its (edge index, source node) pairs, as InferCell sums them.
        self.node_inputs = [
            [(k, src) for k, (to, src) in enumerate(EDGES) if to == node] for node in (1, 2, 3)
        ]

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        active: Sequence[Sequence[int]],
        beta: float = 0.0,
    ) -> torch.Tensor:
        nodes = [x]
        for inputs in self.node_inputs:
            k0, s0 = inputs[0]
            total = self.layers[k0](nodes[s0], weights[k0], active[k0], beta)
            for k, src in inputs[1:]:
                total = total + self.layers[k](nodes[src], weights[k], active[k], beta)
            nodes.append(total)
        return nodes[-1]


class CellSupernet(nn.Module):
    """Stem, three stages of ``cells_per_stage`` mixed cells at C, 2C, 4C, two reduction blocks,
    BN-ReLU, pooling, classifier: ``TinyNetwork`` with every operation on every edge."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        super().__init__()
        self.space = NB201Space(channels=channels, cells_per_stage=cells_per_stage)
        self.aux_skip = 0.0  # DARTS-'s auxiliary skip weight (module docstring)
        add_skeleton(
            self,
            MixedCell,
            channels=self.space.channels,
            cells_per_stage=self.space.cells_per_stage,
            num_classes=num_classes,
            in_channels=in_channels,
        )

    @property
    def num_choices(self) -> list[int]:
        """Operations per edge (5 on each of the 6 edges)."""
        return [len(OPS)] * len(EDGES)

    def forward(self, x: torch.Tensor, edge_weights: torch.Tensor) -> torch.Tensor:
        """Logits for ``x`` with ``edge_weights`` of shape (6, 5): row k weights edge k's
        operations (OPS order) in every cell. Zero weights skip their operation."""
        if tuple(edge_weights.shape) != WEIGHTS_SHAPE:
            raise ValueError(
                f"edge_weights must have shape {WEIGHTS_SHAPE}, got {tuple(edge_weights.shape)}"
            )
        # One host transfer per forward pass decides which operations run.
        mask = (edge_weights != 0).tolist()
        active = [[j for j, on in enumerate(row) if on] for row in mask]
        if not all(active):
            empty = [k for k, a in enumerate(active) if not a]
            raise ValueError(f"edge_weights rows {empty} are all zero; every edge needs an op")
        x = self.stem(x)
        for cell in self.cells:
            if isinstance(cell, MixedCell):
                x = cell(x, edge_weights, active, self.aux_skip)
            else:
                x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))

    def one_hot(self, genotype: Genotype) -> torch.Tensor:
        """The (6, 5) weights that run exactly ``genotype``, on the supernet's device."""
        return one_hot(self.space, genotype).to(self.classifier.weight.device)

    def extract_state(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The ``state_dict`` of ``NB201Space.build(genotype)`` cut from this supernet."""
        return extract_cell_state(self.state_dict(), self.space, genotype)


def one_hot(space: NB201Space, genotype: Genotype) -> torch.Tensor:
    """The (6, 5) one-hot edge weights of ``genotype`` (float32, on the CPU)."""
    weights = torch.zeros(WEIGHTS_SHAPE)
    for k, j in enumerate(space.to_indices(genotype)):
        weights[k, int(j)] = 1.0
    return weights


def extract_cell_state(
    supernet_state: Mapping[str, torch.Tensor], space: NB201Space, genotype: Genotype
) -> dict[str, torch.Tensor]:
    """Rename ``cells.i.layers.k.ops.j.<rest>`` to ``cells.i.layers.k.<rest>`` for the chosen
    ``j`` of each edge; other operations are dropped, everything else keeps its name.
    Parameter-free operations (none, skip, pooling) have no tensors."""
    indices = [int(j) for j in space.to_indices(genotype)]
    out: dict[str, torch.Tensor] = {}
    for name, tensor in supernet_state.items():
        parts = name.split(".", 6)
        if len(parts) == 7 and parts[0] == "cells" and parts[2] == "layers" and parts[4] == "ops":
            if int(parts[5]) != indices[int(parts[3])]:
                continue
            name = f"cells.{parts[1]}.layers.{parts[3]}.{parts[6]}"
        out[name] = tensor.detach().to("cpu").clone()
    return out
