"""What a NAS-Bench-201 cell computes, in a canonical text form (no torch).

A cell's output is a sum of terms. Skip edges copy their source's terms and average pooling
(3 x 3, stride 1, padding ignored) is linear, so it is applied term by term; neither has
weights, so where they sit changes nothing. A ReLU-conv-BN edge has its own weights: it is
an *instance* applied to the value of its source node. Two cells compute the same function
(for weights copied instance by instance) exactly when their outputs are the same formal sum
of the same instances; this module writes that sum canonically:

- a node that receives nothing is zero, and every edge out of it carries nothing (a ReLU-conv-BN
  of zero is batch norm's learnt shift at most, which the benchmark's cells cannot use);
- nodes that do not reach the output do not appear in it;
- batch norm normalises with the batch's statistics, so a ReLU-conv-BN of ``2*t`` is one of
  ``t`` (a common factor of its input is dropped; batch norm's epsilon aside);
- ``2*t`` is one term reached twice (e.g. one 1x1 convolution through two skip paths), and
  differs from two instances with the same input (``c1#0(x)+c1#1(x)``): instances that the text
  would not tell apart get ``#n``, numbered so that the text is the least over all numberings.

Compared with "same multigraph of operations after pruning and collapsing skip-only nodes"
this also merges cells whose pooling is duplicated through a skip (``pool(x)`` reached directly
and through a node that only pools are the same tensor twice).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# (to node, from node) of each edge, in arch-string order (as hwnas.spaces.nb201.EDGES).
_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_CONV = {"nor_conv_1x1": "c1", "nor_conv_3x3": "c3"}

# A term: ("x",), ("pool", term) or ("conv", short name, edge index, value);
# a value: a sorted tuple of (term, coefficient).
Term = tuple
Value = tuple


@dataclass(frozen=True)
class CellFunction:
    """``key``: the canonical text; ``instances``: edge index -> canonical label of each
    ReLU-conv-BN edge that reaches the output (equal labels across cells with equal keys mark
    the edges whose weights must be equal for the cells to compute the same thing)."""

    key: str
    instances: dict[int, str]


def _freeze(counter: Counter) -> Value:
    return tuple(sorted(counter.items(), key=repr))


def cell_function(ops: Sequence[str]) -> CellFunction:
    """The function of the cell whose six edges carry ``ops`` (arch-string order)."""
    values: dict[int, Counter] = {0: Counter({("x",): 1})}
    for node in (1, 2, 3):
        total: Counter = Counter()
        for k, ((to, src), op) in enumerate(zip(_EDGES, ops)):
            if to != node or not values[src] or op == "none":
                continue
            value = values[src]
            if op == "skip_connect":
                total.update(value)
            elif op == "avg_pool_3x3":
                total.update({("pool", t): c for t, c in value.items()})
            elif op in _CONV:
                # Batch norm (batch statistics) undoes a common factor of the conv's input.
                common = math.gcd(*value.values())
                scaled = Counter({t: c // common for t, c in value.items()})
                total[("conv", _CONV[op], k, _freeze(scaled))] += 1
            else:
                raise ValueError(f"unknown NAS-Bench-201 operation '{op}'")
        values[node] = total
    output = _freeze(values[3])
    if not output:
        return CellFunction("zero", {})

    # Instances that appear in the output, grouped by their text without numbers.
    found: dict[int, Term] = {}
    _collect_value(output, found)
    groups: dict[str, list[int]] = {}
    for k, term in found.items():
        groups.setdefault(_render_term(term, None), []).append(k)
    numbered = [sorted(ks) for ks in groups.values() if len(ks) > 1]
    best: tuple[str, dict[int, str]] | None = None
    for perms in itertools.product(*(itertools.permutations(ks) for ks in numbered)):
        ids = {k: i for perm in perms for i, k in enumerate(perm)}
        text = _render_value(output, ids)
        if best is None or text < best[0]:
            labels = {k: _render_term(term, ids) for k, term in found.items()}
            best = (text, labels)
    assert best is not None
    return CellFunction(best[0], best[1])


def _collect_value(value: Value, found: dict[int, Term]) -> None:
    for term, _ in value:
        _collect_term(term, found)


def _collect_term(term: Term, found: dict[int, Term]) -> None:
    if term[0] == "pool":
        _collect_term(term[1], found)
    elif term[0] == "conv":
        found[term[2]] = term
        _collect_value(term[3], found)


def _render_term(term: Term, ids: dict[int, int] | None) -> str:
    if term[0] == "x":
        return "x"
    if term[0] == "pool":
        return f"pool({_render_term(term[1], ids)})"
    _, name, k, value = term
    number = f"#{ids[k]}" if ids is not None and k in ids else ""
    return f"{name}{number}({_render_value(value, ids)})"


def _render_value(value: Value, ids: dict[int, int] | None) -> str:
    parts = sorted(
        (f"{c}*{text}" if c > 1 else text) for t, c in value if (text := _render_term(t, ids))
    )
    return "+".join(parts)
