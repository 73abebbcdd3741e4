"""NB201Space.function_key merges exactly the cells that compute the same function.

The behavioural check builds real cells (the benchmark's ``InferCell``), gives every
ReLU-conv-BN edge weights drawn from its canonical label (so cells with equal keys get the
same weights op by op), runs them on one batch in training mode (batch statistics, as the
benchmark trained them) and compares outputs: equal keys give equal outputs, different keys
give different ones.
"""

from __future__ import annotations

import itertools
import zlib
from collections import defaultdict

import numpy as np
import pytest
import torch

from hwnas.spaces._nb201_net import InferCell, ReLUConvBN
from hwnas.spaces.nb201 import OPS, NB201Space
from hwnas.spaces.nb201_function import cell_function

S, C1, C3, P, N = "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"
CHANNELS = 4


def spec(ops: tuple[str, ...]) -> str:
    return NB201Space().to_spec(list(ops))


def key(ops: tuple[str, ...]) -> str:
    return cell_function(ops).key


# Edge order: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
SAME = [
    # c1(x) + x: a skip out of a node that does more than skip (the multigraph splits it)
    ((C1, S, S, N, N, S), (C1, N, N, S, S, N)),
    # pooling is linear: pool(c1(x) + x) == pool(c1(x)) + pool(x)
    ((C1, S, S, N, N, P), (C1, N, N, P, P, N)),
    # the same pooled tensor twice: through a node that only pools, or two pooling edges
    ((P, N, N, P, S, N), (S, N, N, P, P, N)),
    # batch norm undoes a common factor: c3(2x) == c3(x)
    ((S, S, S, N, N, C3), (N, N, N, C3, N, N)),
    # a node whose only input is a skip collapses onto its source
    ((S, N, N, N, C3, N), (N, N, N, C3, N, N)),
    # inputs of a node in either order; nodes 1 and 2 swapped
    ((C1, C3, N, N, S, S), (C3, C1, N, N, S, S)),
    # edges out of a node that receives nothing, and into a node that does not reach the output
    ((N, S, C3, C1, C3, S), (N, S, P, C1, S, S)),
]
DIFFERENT = [
    # one 1x1 conv reached by two skip paths (2*c1(x)) vs two separate 1x1 convs
    ((C1, N, S, N, S, S), (C1, N, N, C1, S, N)),
    # 2*c1(x) is not c1(x): skips add, batch norm is not applied after them
    ((C1, N, S, N, S, S), (C1, N, N, N, S, N)),
    # a conv is not linear: c3(x + c1(x)) is not c3(x) + c3(c1(x))
    ((C1, S, S, N, N, C3), (C1, N, N, C3, C3, N)),
    # pool(pool(x)) is not pool(x)
    ((P, N, N, N, P, N), (P, N, N, N, S, N)),
]


def test_named_pairs_on_both_sides_of_the_line() -> None:
    for a, b in SAME:
        assert key(a) == key(b), (spec(a), spec(b))
    for a, b in DIFFERENT:
        assert key(a) != key(b), (spec(a), spec(b))
    assert key((S, S, S, N, S, S)) != key((C1, N, S, N, S, S))
    assert key((N,) * 6) == key((C3, C3, C3, N, N, N)) == "zero"
    assert key((C1, N, S, N, S, S)) == "2*c1(x)"
    assert key((C1, N, N, C1, S, N)) == "c1#0(x)+c1#1(x)"


def test_class_count_of_the_whole_space() -> None:
    keys = {key(ops) for ops in itertools.product(OPS, repeat=6)}
    # Fewer than the 6,985 multigraphs of the rule (which also splits the SAME pairs
    # above) and different from the old key's 5,773 (which merged cells it should not).
    assert len(keys) == 4954


def _fill(module: torch.nn.Module, label: str) -> None:
    generator = torch.Generator().manual_seed(zlib.crc32(label.encode()))
    conv, bn = module.op[1], module.op[2]
    conv.weight.data = torch.randn(conv.weight.shape, generator=generator, dtype=torch.float64)
    bn.weight.data = 0.5 + torch.rand(bn.weight.shape, generator=generator, dtype=torch.float64)
    bn.bias.data = torch.randn(bn.bias.shape, generator=generator, dtype=torch.float64)


def outputs(cells: list[tuple[str, ...]]) -> torch.Tensor:
    """Each cell's output, its conv edges weighted by their canonical labels, on one batch."""
    x = torch.randn(8, CHANNELS, 6, 6, generator=torch.Generator().manual_seed(0)).double()
    rows = []
    for ops in cells:
        cell = InferCell(ops, CHANNELS).double().train()
        labels = cell_function(ops).instances
        for k, layer in enumerate(cell.layers):
            if isinstance(layer, ReLUConvBN):
                layer.op[2].eps = 1e-12  # batch norm's epsilon is the only inexactness
                if k in labels:
                    _fill(layer, labels[k])
        with torch.no_grad():
            rows.append(cell(x).flatten())
    return torch.stack(rows)


def test_equal_keys_compute_equal_functions_and_different_keys_differ() -> None:
    space = NB201Space()
    by_key: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for ops in itertools.product(OPS, repeat=6):
        by_key[key(ops)].append(ops)
    rng = np.random.default_rng(0)
    shared = sorted(k for k, members in by_key.items() if len(members) > 1)
    singles = sorted(k for k, members in by_key.items() if len(members) == 1)
    chosen = list(rng.choice(shared, 120, replace=False)) + list(rng.choice(singles, 40))
    named = {key(ops) for pair in SAME + DIFFERENT for ops in pair}
    chosen = sorted({str(k) for k in chosen} | named)
    cells = [ops for k in chosen for ops in by_key[k][:6]]
    assert len(cells) > 2 * len(chosen)  # many classes with several members
    out = outputs(cells)
    keys = [key(ops) for ops in cells]
    first = {k: keys.index(k) for k in chosen}
    for i, k in enumerate(keys):
        assert torch.allclose(out[i], out[first[k]], rtol=1e-9, atol=1e-9), (
            space.to_spec(list(cells[i])),
            space.to_spec(list(cells[first[k]])),
        )
    representatives = out[[first[k] for k in chosen]]
    distance = torch.cdist(representatives, representatives, p=float("inf"))
    distance.fill_diagonal_(float("inf"))
    assert distance.min() > 1e-3


@pytest.mark.parametrize("pair", SAME + DIFFERENT)
def test_named_pairs_behave_as_their_keys_say(pair: tuple[tuple[str, ...], ...]) -> None:
    a, b = outputs(list(pair))
    assert torch.allclose(a, b, rtol=1e-9, atol=1e-9) == (key(pair[0]) == key(pair[1]))
