"""Evaluator: candidate -> measurements, composed from metric providers.

Each provider offers some metrics (a benchmark table's columns; params / MACs / size from the
cheap profilers; error from training; latency from a device ...). The evaluator assigns every
wanted metric to the first provider that offers it and asks each provider only for its share.
Everything is built from a :class:`~hwnas.config.RunConfig`, so a worker process can rebuild
the same evaluator from the run's config.
"""

from __future__ import annotations

import abc
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.errors import ConfigError
from hwnas.objectives.base import METRIC_ALIASES, Constraint, Objective
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Measurement

if TYPE_CHECKING:
    from hwnas.benchmarks import TabularBenchmark
    from hwnas.config import RunConfig


@dataclass(frozen=True)
class EvalContext:
    """Where an evaluation may write (its run directory) and which trial it is."""

    run_dir: Path
    trial: int
    seed: int = 0

    def weights_path(self, trial: int | None = None) -> Path:
        number = self.trial if trial is None else trial
        return self.run_dir / "weights" / f"trial-{number:05d}.safetensors"


class MetricProvider(abc.ABC):
    """Produces some metrics for a candidate."""

    #: True when the metrics need no training (LEMONADE's cheap objectives).
    cheap: bool = True
    #: The hardware this provider occupies while it works ("cpu", "cuda:0" ...), or None.
    #: Executors use it so that latency is never measured on a device that is training.
    resource: str | None = None

    @abc.abstractmethod
    def units(self) -> Mapping[str, str]:
        """The metrics this provider offers, with their units."""

    @abc.abstractmethod
    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        """Measurements of ``metrics`` (a subset of :meth:`units`) for ``candidate``."""


class TableProvider(MetricProvider):
    """Every numeric column of a tabular benchmark. Expensive metrics are still free here."""

    def __init__(self, benchmark: TabularBenchmark) -> None:
        self.benchmark = benchmark

    def units(self) -> Mapping[str, str]:
        return self.benchmark.units

    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        return self.benchmark.query(candidate.genotype, metrics)


class CheapProfileProvider(MetricProvider):
    """Parameters, MACs and fp32 size of the built network; cached per genotype."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        num_classes: int,
        input_shape: Sequence[int] | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.space = space
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape or space.input_shape)
        self._cache: OrderedDict[str, dict[str, Measurement]] = OrderedDict()
        self._cache_size = cache_size

    def units(self) -> Mapping[str, str]:
        return {"params": "count", "macs": "MAC", "size": "B"}

    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext | None = None
    ) -> dict[str, Measurement]:
        profile = self.profile(candidate.genotype)
        return {m: profile[m] for m in metrics}

    def profile(self, genotype: Genotype) -> dict[str, Measurement]:
        key = genotype.key()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        import torch

        from hwnas.profilers.cheap import MACS_CONVENTION, count_macs, count_params, fp32_size_bytes

        with torch.device("meta"):
            model = self.space.build(
                genotype, num_classes=self.num_classes, in_channels=self.input_shape[0]
            )
        env = {"input_shape": list(self.input_shape), "num_classes": self.num_classes}
        result = {
            "params": Measurement("params", float(count_params(model)), "count", env=env),
            "macs": Measurement(
                "macs",
                float(count_macs(model, self.input_shape)),
                "MAC",
                env={**env, "convention": MACS_CONVENTION},
            ),
            "size": Measurement("size", float(fp32_size_bytes(model)), "B", env=env),
        }
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result


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
        return [m for p, share in self._plan if p.cheap for m in share]

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


def build_providers(config: RunConfig, space: SearchSpace) -> list[MetricProvider]:
    """The metric providers a run's config asks for, in priority order.

    Table columns win; then training (error, accuracy, train_time), which also fixes the
    number of classes and the input shape for the profilers; then the target device
    (latency, memory, energy ...); the cheap profilers (params, macs, size) come last.
    """
    providers: list[MetricProvider] = []
    num_classes, input_shape = 10, tuple(space.input_shape)
    if config.benchmark:
        from hwnas.benchmarks import TabularBenchmark

        providers.append(TableProvider(TabularBenchmark(path=config.benchmark, space=space)))
    if config.dataset:
        from hwnas.training.provider import TrainingProvider

        training = TrainingProvider.from_config(config, space)
        providers.append(training)
        num_classes, input_shape = training.num_classes, tuple(training.input_shape)
    input_shape = tuple(config.profiling.get("input_shape") or input_shape)
    if config.device:
        from hwnas.profilers.provider import DeviceProvider

        providers.append(
            DeviceProvider.from_config(
                config, space, num_classes=num_classes, input_shape=input_shape
            )
        )
    providers.append(CheapProfileProvider(space, num_classes=num_classes, input_shape=input_shape))
    return providers


def build_evaluator(
    config: RunConfig, space: SearchSpace, metrics: Sequence[str], **_: Any
) -> Evaluator:
    return Evaluator(build_providers(config, space), metrics)
