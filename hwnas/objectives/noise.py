"""Measurement noise on a Pareto front: which members the noise cannot tell apart.

A measured latency is a median with a spread (p10 and p90 of the timed runs are stored with
it). When two front members' p10-p90 intervals overlap, their order on that objective is not
supported by the measurements; when a trial is dominated only by margins inside the noise,
the front's claim that it is worse is not supported either. Metrics without a spread (counts,
table values, a trained error) are taken as exact. No torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hwnas.objectives.base import Objective
from hwnas.types import Trial


@dataclass(frozen=True)
class NoiseReport:
    """``ties[n]``: front members within noise of member ``n`` (its order against them is noise);
    ``near_front``: trials off the front whose domination the noise cannot support;
    ``noisy``: trials with a measurement flagged as too noisy to trust."""

    ties: dict[int, list[int]]
    near_front: list[int]
    noisy: list[int]

    @property
    def tied_members(self) -> list[int]:
        return sorted(n for n, others in self.ties.items() if others)


def interval(trial: Trial, metric: str) -> tuple[float, float] | None:
    """(p10, p90) of ``metric``'s repeated measurements, or None when it has no spread."""
    m = trial.measurements.get(metric)
    if m is None:
        return None
    lo, hi = m.stats.get("p10"), m.stats.get("p90")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (min(float(lo), m.value), max(float(hi), m.value))


def is_noisy(trial: Trial) -> bool:
    """True when any of the trial's measurements was stored with a spread warning."""
    return any("warning" in m.env for m in trial.measurements.values())


def _bounds(trial: Trial, o: Objective) -> tuple[float, float]:
    """(best case, worst case) of ``o`` in minimisation form."""
    value = o.sign * trial.value(o.metric)
    span = interval(trial, o.metric)
    if span is None:
        return value, value
    a, b = o.sign * span[0], o.sign * span[1]
    return min(a, b), max(a, b)


def surely_dominates(a: Trial, b: Trial, objectives: Sequence[Objective]) -> bool:
    """``a`` dominates ``b`` even with ``a`` at its worst and ``b`` at its best."""
    pairs = [(_bounds(a, o)[1], _bounds(b, o)[0]) for o in objectives]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def within_noise(a: Trial, b: Trial, objectives: Sequence[Objective]) -> bool:
    """Front members ``a`` and ``b`` overlap on every objective that has a spread, and at least
    one objective has one: their order on the noisy objectives is not supported."""
    noisy = [o for o in objectives if interval(a, o.metric) and interval(b, o.metric)]
    if not noisy:
        return False
    for o in noisy:
        (alo, ahi), (blo, bhi) = _bounds(a, o), _bounds(b, o)
        if ahi < blo or bhi < alo:
            return False
    return True


def noise_report(
    members: Sequence[Trial], others: Sequence[Trial], objectives: Sequence[Objective]
) -> NoiseReport:
    """Ties among ``members`` (the front) and the trials of ``others`` (feasible, off the
    front) that no member surely dominates."""
    ties = {
        a.number: [b.number for b in members if b is not a and within_noise(a, b, objectives)]
        for a in members
    }
    near = [
        t.number
        for t in others
        if not any(surely_dominates(m, t, objectives) for m in members)
        and any(interval(t, o.metric) for o in objectives)
    ]
    noisy = sorted(t.number for t in [*members, *others] if is_noisy(t))
    return NoiseReport(ties, sorted(near), noisy)
