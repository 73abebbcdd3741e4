"""Reward engine: one scalar reward from a (predicted or measured) objective vector.

Works on any number of objectives. Values are sign-adjusted (all minimised) and normalised
per objective by the current observed front: 0 at its ideal, 1 at its nadir. Kinds:

- ``tchebycheff`` (default): ``-max_i w_i (z_i + 0.05) - 0.05 sum_i w_i z_i`` (augmented, so
  weakly dominated points score lower);
- ``weighted_sum``: ``-sum_i w_i z_i``;
- ``mnasnet``: ``m * sum_i w_i e_i log(v_i / T_i)`` on raw values, MnasNet's
  ``ACC x prod (cost / T)^-beta`` in log form: ``e = +1`` for a quality objective maximised
  (accuracy), ``-1`` minimised (error: log 1/error), ``-beta`` for a cost; ``T`` is the cost's
  constraint bound when there is one, else the median observed value;
- ``pareto``: minus the additive epsilon indicator to the observed front: positive when the
  point extends the front, minus its distance to the front otherwise (no preference).

Preference vectors ``w`` spread the rewards over the front: Das-Dennis vectors cycled per
rollout, or random Dirichlet draws. Constraint violations (summed, relative to each bound)
put a reward below every feasible reward: ``floor - 1 - violation``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from hwnas.objectives.base import Constraint, Direction, Objective
from hwnas.objectives.pareto import nondominated_mask

REWARDS = ("tchebycheff", "weighted_sum", "mnasnet", "pareto")
PREFERENCES = ("das_dennis", "dirichlet")
# Normalised values are clipped to this range for rewards: a collapsed network 10x beyond the
# front must not drown the differences that matter, and it bounds every feasible reward.
_Z_RANGE = (-1.0, 3.0)
_LOG_RATIO = 5.0


def das_dennis(objectives: int, divisions: int) -> np.ndarray:
    """Evenly spread weight vectors on the simplex (Das and Dennis, 1998)."""
    if objectives == 1:
        return np.ones((1, 1))
    rows = [
        c
        for c in itertools.product(range(divisions + 1), repeat=objectives - 1)
        if sum(c) <= divisions
    ]
    return np.array([[*c, divisions - sum(c)] for c in rows], dtype=float) / divisions


def default_preferences(objectives: int) -> np.ndarray:
    """About 10 to 25 Das-Dennis vectors for 1 to 5 objectives."""
    divisions = {1: 1, 2: 10, 3: 5, 4: 3}.get(objectives, 2)
    return das_dennis(objectives, divisions)


def is_quality(objective: Objective) -> bool:
    """Whether an objective is an accuracy-like quality (vs a resource or cost)."""
    name = objective.metric.lower()
    if objective.direction is Direction.MAX:
        return True
    return any(word in name for word in ("error", "err_", "loss", "perplexity"))


class RewardEngine:
    """Rewards (higher is better) from objective rows, preferences and violations."""

    def __init__(
        self,
        *,
        kind: str,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        mnasnet_beta: float = 0.07,
    ) -> None:
        if kind not in REWARDS:
            raise ValueError(f"unknown reward '{kind}'; choose one of: {', '.join(REWARDS)}")
        self.kind = kind
        self.objectives = list(objectives)
        self.constraints = list(constraints)
        self.m = len(self.objectives)
        self.signs = np.array([o.sign for o in self.objectives])
        self.mnasnet_beta = mnasnet_beta
        self.ideal = np.zeros(self.m)
        self.span = np.ones(self.m)
        self.front = np.zeros((0, self.m))
        self.targets = np.ones(self.m)
        self.floor = {
            "tchebycheff": -(_Z_RANGE[1] + 0.05) * 1.1,
            "weighted_sum": -_Z_RANGE[1],
            "mnasnet": -_LOG_RATIO * self.m * max(1.0, mnasnet_beta),
            "pareto": -(_Z_RANGE[1] - _Z_RANGE[0]),
        }[kind]

    # -- reference -------------------------------------------------------------------------
    def set_reference(self, rows: np.ndarray) -> None:
        """Normalise by the front of ``rows`` (sign-adjusted feasible measured objectives)."""
        rows = rows[np.isfinite(rows).all(axis=1)] if len(rows) else rows
        if len(rows) == 0:
            return
        front = rows[nondominated_mask(rows)]
        self.front = front
        self.ideal = front.min(axis=0)
        span = front.max(axis=0) - self.ideal
        spread = rows.max(axis=0) - rows.min(axis=0)
        # A one-point front has no span: fall back to the spread of everything observed.
        self.span = np.where(span > 0, span, np.where(spread > 0, spread, 1.0))
        raw = rows * self.signs
        self.targets = np.median(raw, axis=0)
        for i, objective in enumerate(self.objectives):
            for c in self.constraints:
                if c.metric == objective.metric:
                    self.targets[i] = c.bound

    def normalise(self, rows: np.ndarray) -> np.ndarray:
        return (rows - self.ideal) / self.span

    # -- rewards ---------------------------------------------------------------------------
    def __call__(
        self, rows: np.ndarray, prefs: np.ndarray, violation: np.ndarray | None = None
    ) -> np.ndarray:
        """Rewards for sign-adjusted ``rows`` (N, m) under ``prefs`` (N, m); ``violation`` (N,)
        is the relative constraint violation (0 = feasible); non-finite rows get the floor."""
        rows = np.asarray(rows, dtype=float)
        finite = np.isfinite(rows).all(axis=1)
        safe = np.where(np.isfinite(rows), rows, 0.0)
        z = np.clip(self.normalise(safe), *_Z_RANGE)
        w = np.asarray(prefs, dtype=float)
        if self.kind == "tchebycheff":
            reward = -(w * (z + 0.05)).max(axis=1) - 0.05 * (w * z).sum(axis=1)
        elif self.kind == "weighted_sum":
            reward = -(w * z).sum(axis=1)
        elif self.kind == "mnasnet":
            reward = self._mnasnet(safe, w)
        else:
            reward = -self.epsilon(z)
        reward = np.maximum(reward, self.floor)
        if violation is not None:
            v = np.asarray(violation, dtype=float)
            reward = np.where(v > 0, self.floor - 1.0 - np.minimum(v, 1e6), reward)
        return np.where(finite, reward, self.floor - 2.0 - 1e6)

    def _mnasnet(self, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        raw = rows * self.signs
        exponents = np.array(
            [
                (1.0 if o.direction is Direction.MAX else -1.0)
                if is_quality(o)
                else -self.mnasnet_beta * o.sign
                for o in self.objectives
            ]
        )
        targets = np.where(self.targets > 0, self.targets, 1.0)
        ratio = np.log(np.maximum(raw, 1e-12) / targets)
        ratio = np.clip(ratio, -_LOG_RATIO, _LOG_RATIO)
        return self.m * (w * exponents * ratio).sum(axis=1)

    def epsilon(self, z: np.ndarray) -> np.ndarray:
        """Additive epsilon indicator of each row of normalised ``z`` against the front."""
        if len(self.front) == 0:
            return np.zeros(len(z))
        front = np.clip(self.normalise(self.front), *_Z_RANGE)
        return (z[:, None, :] - front[None, :, :]).max(axis=2).min(axis=1)

    def violation(self, values: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Relative total violation of raw metric ``values`` (NaN counts as infinitely bad)."""
        total = np.zeros(n)
        for c in self.constraints:
            v = np.asarray(values[c.metric], dtype=float)
            excess = v - c.bound if c.op == "<=" else c.bound - v
            scale = abs(c.bound) if c.bound != 0 else 1.0
            total += np.where(np.isnan(v), math.inf, np.maximum(excess, 0.0) / scale)
        return total
