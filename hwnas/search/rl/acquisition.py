"""Screening: which of many predicted candidates to evaluate for real.

The score of a candidate is its expected hypervolume improvement over the observed front,
averaged over the ensemble members' predictions (each member is one plausible truth), with a
member's improvement counted only where that member predicts the candidate feasible. A batch
is chosen greedily: each pick is added to every member's front as that member predicts it
(and so are candidates still being evaluated), so one batch spreads along the front instead
of piling onto one spot. When nothing is predicted to improve the front, the candidate
predicted closest to it (additive epsilon) wins.
"""

from __future__ import annotations

import numpy as np

from hwnas.objectives.pareto import hypervolume, nondominated_mask


def hv_improvement(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume each row of ``points`` would add to ``front`` (both minimised) up to ``ref``."""
    if len(points) == 0:
        return np.zeros(0)
    m = points.shape[1]
    inside = front[(front < ref).all(axis=1)] if len(front) else front
    if m == 1:
        best = inside[:, 0].min() if len(inside) else ref[0]
        return np.maximum(0.0, np.minimum(best, ref[0]) - points[:, 0])
    if m == 2:
        return _hvi_2d(inside, points, ref)
    base = hypervolume(inside, ref) if len(inside) else 0.0
    out = np.zeros(len(points))
    for i, p in enumerate(points):
        if (p < ref).all():
            out[i] = hypervolume(np.vstack([inside, p[None]]), ref) - base
    return out


def _hvi_2d(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exact 2-D improvement, vectorised: integrate the uncovered height over the staircase."""
    if len(front):
        front = front[np.argsort(front[:, 0], kind="stable")]
        keep = front[:, 1] < np.minimum.accumulate(np.r_[np.inf, front[:-1, 1]])
        front = front[keep]
    starts = np.r_[-np.inf, front[:, 0]]
    ends = np.r_[front[:, 0], ref[0]]
    heights = np.r_[ref[1], front[:, 1]]
    a, b = points[:, :1], points[:, 1:2]
    width = np.maximum(0.0, np.minimum(ends, ref[0])[None] - np.maximum(starts[None], a))
    height = np.maximum(0.0, np.minimum(heights, ref[1])[None] - b)
    return (width * height).sum(axis=1)


def epsilon_distance(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Additive epsilon indicator of each point against ``front`` (<= 0: not dominated)."""
    if len(front) == 0:
        return np.zeros(len(points))
    return (points[:, None, :] - front[None, :, :]).max(axis=2).min(axis=1)


def select_batch(
    predicted: np.ndarray,
    feasible: np.ndarray,
    front: np.ndarray,
    ref: np.ndarray,
    n: int,
    fantasies: np.ndarray | None = None,
) -> list[int]:
    """Indices of ``n`` candidates to evaluate.

    ``predicted`` (K, C, m): each member's normalised, minimised objectives per candidate;
    ``feasible`` (K, C): whether that member predicts the candidate feasible; ``front`` (S, m)
    the observed feasible front, or (K, S, m) one per member (normalised); ``fantasies``
    (K, F, m): members' predictions for candidates still being evaluated.
    """
    members, count, _ = predicted.shape
    fronts = []
    for k in range(members):
        base = front[k] if front.ndim == 3 else front
        f = base if fantasies is None else np.vstack([base, fantasies[k]])
        fronts.append(f[nondominated_mask(f)] if len(f) else f)
    chosen: list[int] = []
    available = np.ones(count, dtype=bool)
    feasible_share = feasible.mean(axis=0)
    mean_prediction = predicted.mean(axis=0)
    for _ in range(min(n, count)):
        gain = np.zeros(count)
        for k in range(members):
            gain += np.where(feasible[k], hv_improvement(fronts[k], predicted[k], ref), 0.0)
        gain /= members
        # Fallback order: predicted-feasible first, then closest to the front.
        closeness = -epsilon_distance(fronts[0], mean_prediction)  # fronts[0]: any will do
        score = np.where(gain > 0, 1e6 + gain, 1e3 * feasible_share + closeness)
        score = np.where(available, score, -np.inf)
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        for k in range(members):
            f = np.vstack([fronts[k], predicted[k, best][None]])
            fronts[k] = f[nondominated_mask(f)]
    return chosen
