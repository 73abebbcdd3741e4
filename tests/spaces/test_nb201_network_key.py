"""NB201Space.network_key merges exactly the cells that are the same network.

Checked three ways: against a brute-force canonical form of the labelled graph (every
renumbering of the nodes that keeps input and output, edges in any direction) and networkx's
isomorphism test; by running real cells whose weights are copied through the renumbering; and
on HW-NAS-Bench's latencies (FPGA and Eyeriss give members of a group identical latencies).
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from hwnas.spaces._nb201_net import InferCell
from hwnas.spaces.nb201 import EDGES, OPS, NB201Space

NB201_CSV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201_cifar10_hw.csv"
S, C1, C3, P, N = "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"
ALL = list(itertools.product(OPS, repeat=6))


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space()


def key(space: NB201Space, ops: tuple[str, ...]) -> str:
    return space.network_key(space.parse(space.to_spec(list(ops))))


def edges(ops: tuple[str, ...]) -> set[tuple[int, int, str]]:
    """The labelled graph: (from, to, op) for every edge that is not ``none``."""
    return {(src, to, op) for (to, src), op in zip(EDGES, ops) if op != N}


def brute_canonical(ops: tuple[str, ...]) -> tuple:
    """The least edge list over every renumbering of the four nodes that keeps node 0 the
    input and node 3 the output (without assuming which renumberings give NB201 cells)."""
    forms = []
    for perm in itertools.permutations(range(4)):
        if perm[0] != 0 or perm[3] != 3:
            continue
        forms.append(tuple(sorted((perm[s], perm[t], op) for s, t, op in edges(ops))))
    return min(forms)


def graph(ops: tuple[str, ...]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from([(0, {"role": "in"}), (1, {"role": "mid"}), (2, {"role": "mid"})])
    g.add_node(3, role="out")
    g.add_edges_from((s, t, {"op": op}) for s, t, op in edges(ops))
    return g


def test_keys_are_graph_isomorphism_classes(space: NB201Space) -> None:
    keys = {ops: key(space, ops) for ops in ALL}
    by_brute: dict[tuple, set[str]] = defaultdict(set)
    by_key: dict[str, list[tuple]] = defaultdict(list)
    for ops in ALL:
        by_brute[brute_canonical(ops)].add(keys[ops])
        by_key[keys[ops]].append(ops)
    assert all(len(v) == 1 for v in by_brute.values())  # isomorphic cells are merged
    assert all(len({brute_canonical(o) for o in v}) == 1 for v in by_key.values())  # only they
    sizes = [len(members) for members in by_key.values()]
    assert len(sizes) == 14125 and sizes.count(2) == 1500 and max(sizes) == 2


def test_keys_agree_with_networkx_on_cells_of_one_function(space: NB201Space) -> None:
    # Isomorphic cells compute the same function with the same operations, so comparing within
    # such groups covers every isomorphic pair; a random sample keeps the test fast.
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for ops in ALL:
        groups[
            (space.function_key(space.parse(space.to_spec(list(ops)))), tuple(sorted(ops)))
        ].append(ops)
    candidates = [(a, b) for g in groups.values() for a, b in itertools.combinations(g, 2)]
    rng = np.random.default_rng(0)
    chosen = [candidates[i] for i in rng.choice(len(candidates), 600, replace=False)]
    same = 0
    for a, b in chosen:
        iso = nx.is_isomorphic(
            graph(a),
            graph(b),
            node_match=lambda x, y: x["role"] == y["role"],
            edge_match=lambda x, y: x["op"] == y["op"],
        )
        assert iso == (key(space, a) == key(space, b)), (a, b)
        same += iso
    assert 0 < same < len(chosen)  # both outcomes occur in the sample


def _run(ops: tuple[str, ...], weights: dict[int, dict[str, torch.Tensor]]) -> torch.Tensor:
    cell = InferCell(ops, 4).double().eval()
    for k, layer in enumerate(cell.layers):
        if k in weights:
            layer.load_state_dict(weights[k])
    x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        return cell(x)


# Renumbering nodes 1 and 2 maps edge 1<-0 to 2<-0, 3<-1 to 3<-2 and back.
SWAP = {0: 1, 1: 0, 2: 2, 3: 3, 4: 5, 5: 4}


@pytest.mark.parametrize(
    "ops",
    [(C3, C1, N, S, P, C3), (C1, C3, N, C3, C3, C1), (P, C3, N, N, C1, S), (C3, S, N, C1, N, C1)],
)
def test_renumbered_cell_is_the_same_network(space: NB201Space, ops: tuple[str, ...]) -> None:
    twin = tuple(ops[SWAP[k]] for k in range(6))
    assert twin != ops and key(space, twin) == key(space, ops)
    torch.manual_seed(0)
    first = InferCell(ops, 4).double().eval()
    for module in first.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # non-trivial statistics in eval mode
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    weights = {k: layer.state_dict() for k, layer in enumerate(first.layers)}
    moved = {SWAP[k]: w for k, w in weights.items()}
    assert torch.allclose(_run(ops, weights), _run(twin, moved), rtol=1e-12, atol=1e-12)


def test_same_function_differently_wired_is_not_merged(space: NB201Space) -> None:
    # pool(x) twice: through a node that only pools, or two pooling edges; same operations.
    a, b = (P, N, N, P, S, N), (S, N, N, P, P, N)
    assert sorted(a) == sorted(b)
    assert space.function_key(space.parse(space.to_spec(list(a)))) == space.function_key(
        space.parse(space.to_spec(list(b)))
    )
    assert key(space, a) != key(space, b)
    # Edge 2<-1 carries an operation: renumbering would reverse it, so no twin.
    c = (C3, C1, S, N, P, C3)
    assert key(space, c) == space.to_spec(list(c))
    assert key(space, (C1, C3, S, N, C3, P)) != key(space, c)


def test_fpga_and_eyeriss_time_each_group_alike(space: NB201Space) -> None:
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    with NB201_CSV.open() as f:
        rows = list(csv.DictReader(f))
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[space.network_key(space.parse(row["arch_str"]))].append(row)
    pairs = [g for g in groups.values() if len(g) == 2]
    assert len(pairs) == 1500
    for column in ("lat_fpga_ms", "lat_eyeriss_ms"):
        assert all(float(a[column]) == float(b[column]) for a, b in pairs)
