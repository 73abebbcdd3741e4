"""Checks of a run's settings that no single part can make alone: settings that are each valid
but together mean something the user did not intend. Each raises :class:`ConfigError`."""

from __future__ import annotations

from collections.abc import Sequence

from hwnas.config import RunConfig
from hwnas.errors import ConfigError
from hwnas.objectives.base import Objective, canonical_metric

#: Pairs of metrics that are one quantity seen from two sides (error = 100 % - accuracy).
_COMPLEMENTS = (
    frozenset({"error", "accuracy"}),
    frozenset({"test_error", "test_accuracy"}),
)


def check_objectives(objectives: Sequence[Objective]) -> None:
    """ConfigError when two objectives are the same quantity (``-o error -o accuracy``)."""
    names = {canonical_metric(o.metric) for o in objectives}
    for pair in _COMPLEMENTS:
        if pair <= names:
            a, b = sorted(pair)
            raise ConfigError(
                f"objectives '{a}' and '{b}' are the same quantity ({a} = 100 % - {b} or the "
                "reverse); keep one of them"
            )


def check_settings(
    config: RunConfig, objectives: Sequence[Objective], max_objectives: int | None
) -> None:
    """Settings that would be silently ignored or silently change what is searched."""
    check_objectives(objectives)
    latency = config.profiling.get("latency")
    if latency is not None and not config.device:
        raise ConfigError(
            f"--latency {latency} needs a --device to measure or look up latency on; a table "
            "run reads latency from its columns: drop --latency or give --device"
        )
    if max_objectives is not None and len(objectives) > max_objectives:
        raise ConfigError(
            f"strategy '{config.strategy}' optimises {max_objectives} objective(s), not "
            f"{len(objectives)}; keep one --objective and turn the others into --constraint "
            "limits, or use a multi-objective strategy (nsga2, lemonade, random)"
        )
