"""DARTS's collapse, measured: how much of the derived architecture is skips and free operations.

Weight sharing rewards operations that train fast, so differentiable searches drift towards
skip connections and other parameter-free operations as training goes on (Zela et al. 2020,
"Understanding and Robustifying DARTS"; Chu et al. 2020, "Fair DARTS"). The derived
architecture's share of skip connections and of parameter-free operations, logged epoch by
epoch, shows the drift; a remedy (:mod:`hwnas.search.supernet.robust`) should keep both flat.

The shares are of the positions of the derived architecture (the cell's six edges in
``nb201``, the searchable layers in ``mobilenet``). ``none`` (the zero edge of a cell) counts as
parameter-free but not as a skip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["PARAMETER_FREE", "SKIPS", "CollapseStats", "collapse_stats", "collapse_trend"]

#: Operation names that pass their input through unchanged.
SKIPS: frozenset[str] = frozenset({"skip", "skip_connect", "identity"})
#: Operation names without weights (skips, the zero edge, pooling).
PARAMETER_FREE: frozenset[str] = SKIPS | frozenset({"none", "zero", "avg_pool_3x3", "max_pool_3x3"})


@dataclass(frozen=True)
class CollapseStats:
    """Shares (0..1) of the derived architecture's positions."""

    skip_share: float
    parameter_free_share: float
    positions: int

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def collapse_stats(options: Sequence[Sequence[str]], indices: Sequence[int]) -> CollapseStats:
    """The collapse of one architecture: ``options[p]`` names position ``p``'s operations and
    ``indices[p]`` is the one chosen (e.g. each edge's arg-max)."""
    if len(options) != len(indices) or not indices:
        raise ValueError(
            f"need one chosen index per position: {len(options)} positions, {len(indices)} indices"
        )
    chosen = [str(options[p][int(j)]) for p, j in enumerate(indices)]
    skips = sum(op in SKIPS for op in chosen)
    free = sum(op in PARAMETER_FREE for op in chosen)
    n = len(chosen)
    return CollapseStats(skips / n, free / n, n)


def collapse_trend(history: Sequence[float]) -> float:
    """Last minus first value of an epoch-by-epoch share (> 0: drifting towards collapse)."""
    return float(history[-1] - history[0]) if history else 0.0
