"""Choosing trials from a run: ``knee``, ``front``, ``best:METRIC`` or ``trial:N``.

Used by export and reports; no torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hwnas.errors import ConfigError
from hwnas.objectives.base import Constraint, default_direction
from hwnas.objectives.pareto import is_feasible
from hwnas.results import Front
from hwnas.types import Trial, TrialState

SELECTION_HELP = "knee, front, best:METRIC or trial:N"


@dataclass(frozen=True)
class Selection:
    kind: str  # "knee", "front", "best", "trial"
    metric: str | None = None
    number: int | None = None

    def __str__(self) -> str:
        if self.kind == "best":
            return f"best:{self.metric}"
        if self.kind == "trial":
            return f"trial:{self.number}"
        return self.kind


def parse_selection(text: str) -> Selection:
    cleaned = text.strip()
    if cleaned in ("knee", "front"):
        return Selection(cleaned)
    match = re.fullmatch(r"best:([A-Za-z_][\w.\-]*)", cleaned)
    if match:
        return Selection("best", metric=match.group(1))
    match = re.fullmatch(r"trial:(\d+)", cleaned)
    if match:
        return Selection("trial", number=int(match.group(1)))
    raise ConfigError(f"cannot read selection '{text}'; use {SELECTION_HELP}")


def select_trials(
    selection: Selection,
    trials: Sequence[Trial],
    front: Front,
    constraints: Sequence[Constraint] = (),
) -> list[Trial]:
    """The chosen trials; ConfigError when the selection names nothing usable."""
    if selection.kind == "front":
        chosen = list(front.members)
    elif selection.kind == "knee":
        chosen = [front.knee] if front.knee is not None else []
    elif selection.kind == "trial":
        chosen = [t for t in trials if t.number == selection.number]
        if not chosen:
            raise ConfigError(f"the run has no trial {selection.number}")
        if chosen[0].state is not TrialState.COMPLETE:
            raise ConfigError(
                f"trial {selection.number} did not complete ({chosen[0].state.value})"
            )
    else:
        metric = selection.metric or ""
        direction = next(
            (o.direction for o in front.objectives if o.metric == metric), default_direction(metric)
        )
        sign = 1.0 if direction.value == "min" else -1.0
        usable = [
            t for t in trials if is_feasible(t, constraints) and not math.isnan(t.value(metric))
        ]
        if not usable:
            raise ConfigError(f"no completed, feasible trial has metric '{metric}'")
        chosen = [min(usable, key=lambda t: (sign * t.value(metric), t.number))]
    if not chosen:
        raise ConfigError("the run has no completed, feasible trial to select")
    return chosen
