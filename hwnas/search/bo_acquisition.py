"""Expected hypervolume improvement from ensemble samples, and greedy batch selection.

Every candidate comes with one predicted objective row per ensemble member (cheap objectives
are exact, so they are equal across members); the ensemble is read as samples of the
posterior. A candidate's score is the hypervolume its row adds to the current front: with
independent Thompson sampling (BANANAS's choice, the default) the row of one member drawn at
random; with EHVI the mean over members of what each member's row adds. A batch is chosen
greedily with the kriging believer: after a pick, its mean row joins the front, so the next
pick has to add hypervolume somewhere else.

Everything is minimised and normalised (ideal 0, nadir 1, reference point ``reference``).
Two objectives use the exact staircase formula, vectorised over candidates and members; more
use a fixed Monte Carlo sample of the box under the reference point.
"""

from __future__ import annotations

import numpy as np

from hwnas.objectives.pareto import nondominated_mask

_MC_SAMPLES = 4096


def hvi(front: np.ndarray, points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Hypervolume each row of ``points`` (shape (..., m)) adds to ``front`` (k, m)."""
    front = front[np.isfinite(front).all(axis=1)]
    front = front[(front < reference).all(axis=1)]
    if len(front):
        front = front[nondominated_mask(front)]
    if points.shape[-1] == 2:
        return _hvi_2d(front, points, reference)
    return _hvi_mc(front, points, reference)


def _hvi_2d(front: np.ndarray, points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The staircase that ``front`` leaves free, cut into vertical strips, each intersected
    with the box between a point and the reference point."""
    order = np.argsort(front[:, 0], kind="stable")
    xs, ys = front[order, 0], front[order, 1]
    lo = np.concatenate([[-np.inf], xs])
    hi = np.concatenate([xs, [reference[0]]])
    height = np.concatenate([[reference[1]], ys])
    px, py = points[..., 0:1], points[..., 1:2]
    width = np.clip(hi - np.maximum(lo, px), 0.0, None)
    tall = np.clip(height - py, 0.0, None)
    return (width * tall).sum(axis=-1)


def _hvi_mc(front: np.ndarray, points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    flat = points.reshape(-1, points.shape[-1])
    finite = flat[np.isfinite(flat).all(axis=1)]
    low = np.minimum(finite.min(axis=0) if len(finite) else reference - 1, reference - 1)
    rng = np.random.default_rng(0)  # fixed: the same candidates always score the same
    samples = low + rng.random((_MC_SAMPLES, len(reference))) * (reference - low)
    free = np.ones(len(samples), dtype=bool)
    for f in front:
        free &= ~(f <= samples).all(axis=1)
    samples = samples[free]
    volume = float(np.prod(reference - low)) / _MC_SAMPLES
    out = np.empty(len(flat))
    for start in range(0, len(flat), 256):  # bounded memory: (256, samples, m)
        chunk = flat[start : start + 256]
        out[start : start + 256] = (chunk[:, None, :] <= samples[None]).all(axis=2).sum(1)
    return (out * volume).reshape(points.shape[:-1])


ACQUISITIONS = ("its", "ehvi", "mean")


def select_batch(
    front: np.ndarray,
    samples: np.ndarray,
    k: int,
    *,
    ideal: np.ndarray,
    nadir: np.ndarray,
    rng: np.random.Generator,
    acquisition: str = "its",
    reference: float = 1.1,
) -> list[int]:
    """Indices of ``k`` candidates by greedy hypervolume improvement with the kriging believer.

    ``front`` (f, m): the objective rows evaluated so far (and believed rows of candidates in
    flight); ``samples`` (members, n, m): each member's prediction of each candidate.
    ``acquisition``: ``its`` (independent Thompson sampling, BANANAS's choice: each candidate
    is scored by the improvement of one member drawn at random), ``ehvi`` (the mean
    improvement over members) or ``mean`` (the improvement of the members' mean). Ties at
    zero improvement (every candidate predicted dominated) go to the candidate closest to the
    front, by the additive epsilon it would need to become non-dominated.
    """
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"unknown acquisition '{acquisition}'; use one of {ACQUISITIONS}")
    if acquisition == "its":
        draw = rng.integers(samples.shape[0], size=samples.shape[1])
        samples = samples[draw, np.arange(samples.shape[1])][None]
    elif acquisition == "mean":
        samples = samples.mean(axis=0, keepdims=True)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    Z = (samples - ideal) / span
    current = (front - ideal) / span
    ref = np.full(samples.shape[-1], reference)
    mean = Z.mean(axis=0)
    chosen: list[int] = []
    available = np.ones(Z.shape[1], dtype=bool)
    for _ in range(min(k, Z.shape[1])):
        gain = hvi(current, Z, ref).mean(axis=0)
        gap = _epsilon(current, mean)
        score = np.where(available, gain, -np.inf)
        tie = np.where(available, -gap, -np.inf)
        best = int(np.lexsort((tie, score))[-1])
        chosen.append(best)
        available[best] = False
        current = np.vstack([current, mean[best]])
    return chosen


def _epsilon(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """How far each point must move (same amount on every axis) to leave the front's
    dominated region; 0 for points that are already non-dominated."""
    if len(front) == 0:
        return np.zeros(len(points))
    need = (points[:, None, :] - front[None, :, :]).min(axis=2)  # per front member
    return np.clip(need.max(axis=1), 0.0, None)
