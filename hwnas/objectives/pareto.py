"""Pareto fronts, hypervolume and knee points (moocore underneath; no torch).

All functions take an objective matrix ``F`` (one row per point) in *minimisation* form:
use :func:`objective_matrix` to build it from trials and objectives.
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np

from hwnas.objectives.base import Constraint, Objective
from hwnas.types import Trial, TrialState


def objective_matrix(trials: Sequence[Trial], objectives: Sequence[Objective]) -> np.ndarray:
    """Rows of sign-adjusted objective values (every column minimised); NaN where missing."""
    F = np.array([[o.sign * t.value(o.metric) for o in objectives] for t in trials], dtype=float)
    return F.reshape(len(trials), len(objectives))


def is_feasible(trial: Trial, constraints: Sequence[Constraint]) -> bool:
    return trial.state is TrialState.COMPLETE and all(
        c.violation(trial.value(c.metric)) == 0.0 for c in constraints
    )


def nondominated_mask(F: np.ndarray) -> np.ndarray:
    """True for rows no other row dominates; rows containing NaN are never on the front.

    Duplicate rows are all kept (they tie), so two trials with equal objectives share the front.
    """
    mask = np.zeros(len(F), dtype=bool)
    finite = np.isfinite(F).all(axis=1)
    if finite.any():
        mask[finite] = moocore.is_nondominated(F[finite], keep_weakly=True)
    return mask


def pareto_ranks(F: np.ndarray) -> np.ndarray:
    """Non-dominated sorting: 0 for the first front, 1 for the next ...; -1 for NaN rows."""
    ranks = np.full(len(F), -1, dtype=int)
    finite = np.isfinite(F).all(axis=1)
    if finite.any():
        ranks[finite] = moocore.pareto_rank(F[finite])
    return ranks


def front_indices(
    trials: Sequence[Trial], objectives: Sequence[Objective], constraints: Sequence[Constraint] = ()
) -> list[int]:
    """Indices into ``trials`` of the feasible, complete, non-dominated trials."""
    usable = [i for i, t in enumerate(trials) if is_feasible(t, constraints)]
    if not usable:
        return []
    F = objective_matrix([trials[i] for i in usable], objectives)
    mask = nondominated_mask(F)
    return [usable[i] for i in np.flatnonzero(mask)]


def hypervolume(F: np.ndarray, ref: Sequence[float] | np.ndarray) -> float:
    """Hypervolume dominated by the rows of ``F`` up to ``ref`` (points beyond ``ref`` add 0)."""
    ref = np.asarray(ref, dtype=float)
    F = F[np.isfinite(F).all(axis=1)]
    F = F[(ref > F).all(axis=1)]
    if len(F) == 0:
        return 0.0
    return float(moocore.hypervolume(F, ref=ref))


#: The reference point of the normalised hypervolume, per scaled axis.
HV_REFERENCE = 1.1
#: What every output calls :func:`normalised_hypervolume` (console, front files, plots, report).
HV_NAME = "normalised hypervolume"
HV_DEFINITION = (
    "each objective scaled so that the best and the worst value among the feasible trials map "
    "to 0 and 1; hypervolume up to the reference point 1.1 on every scaled axis, divided by "
    "the volume of that box (1.1^m), so it lies in [0, 1]"
)


def normalise(F: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> np.ndarray:
    """Scale each column so that ``ideal`` maps to 0 and ``nadir`` to 1."""
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    return (F - ideal) / span


def hypervolume_bounds(F: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(ideal, nadir) of the finite rows of ``F``: the normalisation of the hypervolume."""
    F = F[np.isfinite(F).all(axis=1)]
    if not len(F):
        return None
    return F.min(axis=0), F.max(axis=0)


def normalised_hypervolume(
    F: np.ndarray, ideal: np.ndarray, nadir: np.ndarray, ref: float = HV_REFERENCE
) -> float:
    """THE hypervolume hwnas reports (see ``HV_DEFINITION``), in [0, 1].

    Rows are scaled by ``ideal`` (-> 0) and ``nadir`` (-> 1); a row better than ``ideal`` (bounds
    taken from other trials) is clipped to it, so the value never exceeds 1. Divided by
    ``ref ** m``: 1 means one point at the ideal, 0 no point inside the reference box.
    """
    m = F.shape[1]
    Z = np.maximum(normalise(F, np.asarray(ideal), np.asarray(nadir)), 0.0)
    return hypervolume(Z, np.full(m, ref)) / ref**m


def knee_index(F: np.ndarray) -> int:
    """The knee of a front: the point farthest behind the hyperplane through its extremes.

    Objectives are scaled to [0, 1] over the front first. For two objectives this is the
    classic maximum distance from the line joining the two extreme points. Falls back to the
    point nearest the ideal point when the extremes do not span a hyperplane.
    """
    if len(F) == 0:
        raise ValueError("knee of an empty front")
    if len(F) <= 2:
        return 0
    Z = normalise(F, F.min(axis=0), F.max(axis=0))
    m = Z.shape[1]
    # The extreme point of objective j: best in j, ties broken towards the better others.
    extremes = Z[[int(np.argmin(Z[:, j] + 1e-9 * Z.sum(axis=1))) for j in range(m)]]
    try:
        normal = np.linalg.solve(extremes, np.ones(m))
    except np.linalg.LinAlgError:
        normal = None
    if normal is None or not np.all(np.isfinite(normal)) or np.allclose(normal, 0):
        return int(np.argmin(np.linalg.norm(Z, axis=1)))
    distance = (1.0 - Z @ normal) / np.linalg.norm(normal)
    return int(np.argmax(distance))
