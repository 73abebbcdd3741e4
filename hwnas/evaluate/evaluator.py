"""Evaluator: candidate -> measurements, composed from metric providers.

Each provider offers some metrics (a benchmark table's columns; params / MACs / size from the
cheap profilers; error from training; latency from a device ...). The evaluator assigns every
wanted metric to the first provider that offers it and asks each provider only for its share.
Everything is built from a :class:`~hwnas.config.RunConfig`, so a worker process can rebuild
the same evaluator from the run's config.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwnas.errors import ConfigError
from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.types import Candidate, Measurement


class Evaluator:
    """Routes each wanted metric to the first provider that offers it."""

    def __init__(self, providers: Sequence[MetricProvider], metrics: Sequence[str]) -> None:
        self.providers = list(providers)
        self.metrics = list(dict.fromkeys(metrics))
        self._plan: list[tuple[MetricProvider, list[str]]] = []
        self._units: dict[str, str] = {}
        available = available_units(self.providers)
        missing = [m for m in self.metrics if m not in available]
        if missing:
            raise ConfigError(
                f"no source for metric {', '.join(repr(m) for m in missing)}; "
                f"available here: {', '.join(sorted(available)) or 'none'}"
            )
        for provider in self.providers:
            share = [m for m in self.metrics if m in provider.units() and m not in self._units]
            for m in share:
                self._units[m] = provider.units()[m]
            if share:
                self._plan.append((provider, share))

    def units(self) -> dict[str, str]:
        return dict(self._units)

    def cheap_metrics(self) -> list[str]:
        return [m for p, share in self._plan for m in share if m in p.cheap_metrics()]

    def phases(self) -> tuple[list[str], dict[str, list[str]]]:
        """Metrics measured alongside training (phase 1), and the metrics timed on a device
        that must be otherwise idle, by that device (phase 2; see ``MetricProvider.exclusive``).
        """
        first: list[str] = []
        second: dict[str, list[str]] = {}
        for provider, share in self._plan:
            if provider.exclusive and provider.resource is not None:
                second.setdefault(provider.resource, []).extend(share)
            else:
                first.extend(share)
        return first, second

    def resources(self, metrics: Sequence[str]) -> list[str]:
        """The devices occupied while ``metrics`` are measured."""
        used = {p.resource for p, share in self._plan if p.resource and set(share) & set(metrics)}
        return sorted(used)  # type: ignore[arg-type]

    def evaluate(
        self, candidate: Candidate, ctx: EvalContext, *, only: Sequence[str] | None = None
    ) -> dict[str, Measurement]:
        results: dict[str, Measurement] = {}
        for provider, share in self._plan:
            wanted = [m for m in share if only is None or m in only]
            if wanted:
                results.update(provider.evaluate(candidate, wanted, ctx))
        return results


def available_units(providers: Sequence[MetricProvider]) -> dict[str, str]:
    units: dict[str, str] = {}
    for provider in providers:
        for metric, unit in provider.units().items():
            units.setdefault(metric, unit)
    return units
