"""NAS-Bench-201 cell space: 6 edges of a 4-node cell, 5 operations each (15,625 cells).

The canonical form is the benchmark's architecture string, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``,
and :meth:`NB201Space.index_of` gives the benchmark's own ``arch_idx``. This module does not
import torch; :meth:`NB201Space.build` imports the network module on first use.
"""

from __future__ import annotations

import functools
import gzip
import itertools
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import GenotypeError
from hwnas.spaces.base import CategoricalSpace, LayerInfo
from hwnas.spaces.nb201_cell import EDGES, OPS
from hwnas.spaces.nb201_function import cell_function
from hwnas.types import Genotype

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EDGES", "OPS", "NB201Space"]

NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625

_KERNEL = {"none": 0, "skip_connect": 0, "nor_conv_1x1": 1, "nor_conv_3x3": 3, "avg_pool_3x3": 3}
_EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
_FORM = (
    "expected the NAS-Bench-201 form '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op one of "
    f"{', '.join(OPS)}, e.g. '{_EXAMPLE}'"
)
_ORDER_FILE = "nb201_order.u16.gz"


@functools.lru_cache(maxsize=1)
def _order() -> tuple[np.ndarray, np.ndarray]:
    """(code of each benchmark index, benchmark index of each code), read once from package data.

    The benchmark's order is not an enumeration of the codes, so it ships as a data file
    (see ``hwnas/spaces/data/README.md``).
    """
    path = resources.files("hwnas.spaces") / "data" / _ORDER_FILE
    codes = np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<u2").astype(np.int64)
    if codes.shape != (NUM_ARCHS,):
        raise RuntimeError(f"corrupt package data {_ORDER_FILE}: {codes.shape[0]} entries")
    index_of_code = np.empty(NUM_ARCHS, dtype=np.int64)
    index_of_code[codes] = np.arange(NUM_ARCHS)
    codes.flags.writeable = False
    index_of_code.flags.writeable = False
    return codes, index_of_code


class NB201Space(CategoricalSpace):
    """The NAS-Bench-201 search space and its network (``TinyNetwork`` of the benchmark).

    ``channels`` is the width of the first stage (C, doubled at each of the two reductions);
    ``cells_per_stage`` is the number of cells per stage (N). The benchmark uses C=16, N=5.
    """

    name = "nb201"
    input_shape = (3, 32, 32)

    def __init__(self, *, channels: int = 16, cells_per_stage: int = 5) -> None:
        if int(channels) != channels or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        if int(cells_per_stage) != cells_per_stage or cells_per_stage < 1:
            raise ValueError(f"cells_per_stage must be a positive integer, got {cells_per_stage!r}")
        self.channels = int(channels)
        self.cells_per_stage = int(cells_per_stage)

    def config(self) -> dict[str, Any]:
        return {"channels": self.channels, "cells_per_stage": self.cells_per_stage}

    # -- canonical form --------------------------------------------------------------------
    def options(self) -> Sequence[Sequence[str]]:
        return [OPS] * len(EDGES)

    def to_spec(self, choices: Sequence[str]) -> str:
        nodes: list[list[str]] = [[], [], []]
        for (to, src), op in zip(EDGES, choices):
            nodes[to - 1].append(f"{op}~{src}")
        return "+".join("|" + "|".join(node) + "|" for node in nodes)

    def from_spec(self, spec: str) -> list[str]:
        text = spec.strip()
        nodes = text.split("+")
        if len(nodes) != 3:
            raise GenotypeError(f"'{spec}' has {len(nodes)} nodes, not 3; {_FORM}")
        choices: list[str] = []
        for to, node in enumerate(nodes, start=1):
            if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
                raise GenotypeError(f"'{spec}': node {to} '{node}' is not enclosed in '|'; {_FORM}")
            edges = node[1:-1].split("|")
            if len(edges) != to:
                raise GenotypeError(
                    f"'{spec}': node {to} has {len(edges)} inputs, needs {to}; {_FORM}"
                )
            for src, edge in enumerate(edges):
                op, sep, source = edge.partition("~")
                if not sep or source != str(src):
                    raise GenotypeError(
                        f"'{spec}': edge '{edge}' of node {to} should read 'op~{src}'; {_FORM}"
                    )
                if op not in OPS:
                    raise GenotypeError(f"'{spec}': unknown operation '{op}'; {_FORM}")
                choices.append(op)
        return choices

    # -- benchmark index -------------------------------------------------------------------
    def size(self) -> int:
        return NUM_ARCHS

    def index_of(self, genotype: Genotype) -> int:
        """The NAS-Bench-201 ``arch_idx`` of ``genotype`` (0..15624)."""
        self.validate(genotype)
        code = 0
        for digit in self.to_indices(genotype):
            code = code * len(OPS) + int(digit)
        return int(_order()[1][code])

    def from_index(self, index: int) -> Genotype:
        """The architecture whose NAS-Bench-201 ``arch_idx`` is ``index``."""
        if int(index) != index or not 0 <= index < NUM_ARCHS:
            raise GenotypeError(
                f"NAS-Bench-201 index {index!r} is out of range; use 0..{NUM_ARCHS - 1}"
            )
        code = int(_order()[0][int(index)])
        digits = [0] * len(EDGES)
        for position in reversed(range(len(EDGES))):
            code, digits[position] = divmod(code, len(OPS))
        return self.from_indices(digits)

    # -- layers and networks ---------------------------------------------------------------
    def predictor_features(self, genotype: Genotype) -> np.ndarray:
        """One-hot edges plus the path encoding (White et al., BANANAS, 2021).

        The path encoding marks which sequences of operations connect the cell's input to its
        output (a path through a ``none`` edge carries nothing). Accuracy depends on those
        paths much more than on where an operation sits, so predictors learn from fewer
        evaluations with it.
        """
        ops = dict(zip(EDGES, self.choices(genotype)))
        live = [op for op in OPS if op != "none"]
        paths = [((1, 0), (3, 1)), ((2, 0), (3, 2)), ((1, 0), (2, 1), (3, 2)), ((3, 0),)]
        features = []
        for path in sorted(paths, key=len):
            sequence = [ops[edge] for edge in path]
            for combo in itertools.product(live, repeat=len(path)):
                features.append(1.0 if list(combo) == sequence else 0.0)
        return np.concatenate([self.encode(genotype), np.array(features, dtype=np.float32)])

    def function_key(self, genotype: Genotype) -> str:
        """The function the cell computes, as canonical text (``zero`` for none): equal keys
        exactly when the cells compute the same thing with their weights copied edge by edge
        (see :mod:`hwnas.spaces.nb201_function`). NAS-Bench-201 trained such cells
        separately, so their accuracies differ by training noise alone.
        """
        return cell_function(self.choices(genotype)).key

    def network_key(self, genotype: Genotype) -> str:
        """The network up to renumbering its nodes: equal keys exactly for cells that are the
        same graph of the same operations (a ``none`` edge counts as no edge). The only
        renumbering an NB201 cell admits swaps nodes 1 and 2, which maps the cell onto another
        one when edge 2<-1 is ``none``; the key is the smaller of the two architecture strings.

        Stricter than :meth:`function_key` (which also merges cells wired differently): two
        cells with equal keys run the same operations on the same tensors, so a device times
        them alike up to measurement noise (NAS-Bench-201 and HW-NAS-Bench measured each
        separately).
        """
        a, b, between, c, d, e = self.choices(genotype)
        own = self.to_spec([a, b, between, c, d, e])
        if between != "none":  # edge 1->2 has no image 2->1: no renumbering preserves the graph
            return own
        return min(own, self.to_spec([b, a, between, c, e, d]))

    def is_degenerate(self, genotype: Genotype) -> bool:
        """True when no path joins the cell's input to its output: the network's prediction
        then does not depend on the image (``function_key`` is ``zero``)."""
        return self.function_key(genotype) == "zero"

    def layers(self, genotype: Genotype) -> list[LayerInfo]:
        """The six cell edges in arch-string order (width of the first stage)."""
        self.validate(genotype)
        return [
            LayerInfo(op=op, kernel=_KERNEL[op], channels=self.channels, stride=1)
            for op in self.choices(genotype)
        ]

    def build(self, genotype: Genotype, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        self.validate(genotype)
        from hwnas.spaces._nb201_net import TinyNetwork

        return TinyNetwork(
            self.choices(genotype),
            channels=self.channels,
            cells_per_stage=self.cells_per_stage,
            num_classes=num_classes,
            in_channels=in_channels,
        )
