"""Objectives, constraints and Pareto utilities. Never imports torch."""

from hwnas.objectives.base import (
    Constraint,
    Direction,
    MetricInfo,
    Objective,
    metric_info,
    parse_constraint,
    parse_objective,
)

__all__ = [
    "Constraint",
    "Direction",
    "MetricInfo",
    "Objective",
    "metric_info",
    "parse_constraint",
    "parse_objective",
]
