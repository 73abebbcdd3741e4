"""Which of a supernet's proposals are handed to the runner: a spread-out predicted front.

Each head proposes its arg-max and samples of its distribution (a pool). Handing off only the
first few per head gave fronts of two on error x latency x params (the heads' samples lie close
together in cost, and noisy proxy errors then let one dominate the rest). Instead the pool is
sorted by predicted Pareto rank on (one-shot error, predicted costs), and within a rank by
NSGA-II's crowding distance, so the hand-off covers the predicted trade-off evenly and a
budget that cuts the list keeps the most spread-out part of the best predicted front.
"""

from __future__ import annotations

import numpy as np

from hwnas.objectives.pareto import pareto_ranks

__all__ = ["crowding_distance", "handoff_order"]


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row (inf at the ends of every objective)."""
    n, m = F.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return distance


def handoff_order(F: np.ndarray) -> list[int]:
    """Row indices of ``F`` (minimised objectives) by Pareto rank, then by crowding distance
    (largest first) within a rank; ties keep the pool's order."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return []
    ranks = pareto_ranks(F)
    ranks = np.where(ranks < 0, ranks.max() + 1, ranks)
    crowd = np.zeros(len(F))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = crowding_distance(F[members])
    return sorted(range(len(F)), key=lambda i: (int(ranks[i]), -crowd[i], i))
