"""Objectives and constraints resolved against the metrics (and units) a run has: names to
the metric that is there (``flops`` -> ``macs``), bounds converted to the metric's unit. Pure
Python, no torch: used when a run starts and whenever a stored run is read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hwnas.errors import ConfigError
from hwnas.objectives.base import METRIC_ALIASES, Constraint, Objective

__all__ = ["resolve_metric", "resolve_objectives"]


def resolve_metric(name: str, available: Mapping[str, str]) -> str:
    """``name`` itself if available, else its canonical alias (``flops`` -> ``macs``)."""
    if name in available:
        return name
    alias = METRIC_ALIASES.get(name)
    if alias is not None and alias in available:
        return alias
    import difflib

    close = difflib.get_close_matches(name, list(available), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(
        f"unknown metric '{name}'{hint}; available here: {', '.join(sorted(available))}"
    )


def resolve_objectives(
    objectives: Sequence[Objective], constraints: Sequence[Constraint], units: Mapping[str, str]
) -> tuple[list[Objective], list[Constraint]]:
    """Objectives and constraints with metric names resolved and bounds in metric units."""
    resolved_objectives = [
        Objective(resolve_metric(o.metric, units), o.direction, o.limit) for o in objectives
    ]
    names = [o.metric for o in resolved_objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives name the same metric twice: {', '.join(names)}")
    resolved_constraints = []
    for c in constraints:
        metric = resolve_metric(c.metric, units)
        resolved_constraints.append(
            Constraint(metric, c.op, c.bound, c.unit).resolved(units[metric])
        )
    for o in resolved_objectives:
        if o.limit is not None:
            op = "<=" if o.sign > 0 else ">="
            resolved_constraints.append(Constraint(o.metric, op, o.limit, units[o.metric]))
    return resolved_objectives, resolved_constraints
