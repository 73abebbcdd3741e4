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
from hwnas.segmentation import DATASET_PREFIX
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
    #: True when the metrics are timed on ``resource`` (measured latency, energy): parallel
    #: executors then measure them with that device to themselves (see hwnas/gate.py).
    exclusive: bool = False

    @abc.abstractmethod
    def units(self) -> Mapping[str, str]:
        """The metrics this provider offers, with their units."""

    @abc.abstractmethod
    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        """Measurements of ``metrics`` (a subset of :meth:`units`) for ``candidate``."""


class TableProvider(MetricProvider):
    """Every numeric column of a tabular benchmark.

    A lookup is free, but it stands in for training and measuring, so it counts as an
    expensive evaluation (LEMONADE and RL must not screen candidates with it).
    """

    cheap = False

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
        fast: bool = False,
    ) -> None:
        self.space = space
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape or space.input_shape)
        self._cache: OrderedDict[str, dict[str, Measurement]] = OrderedDict()
        self._cache_size = cache_size
        # fast: an exact per-position cost model (one-off ~Σ cardinalities builds, then
        # microseconds per genotype), for strategies that screen thousands of candidates.
        self._fast = fast
        self._additive: Any = None

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
        from hwnas.profilers.additive import additive_model, exact_costs
        from hwnas.profilers.cheap import MACS_CONVENTION

        if self._fast and self._additive is None:
            self._additive = additive_model(self.space, self.num_classes, self.input_shape) or False
        if self._additive:
            values = self._additive.predict(self.space.to_indices(genotype))
            params, macs, size = values["params"], values["macs"], values["size"]
        else:
            params, macs, size = exact_costs(
                self.space, genotype, self.num_classes, self.input_shape
            )
        env = {"input_shape": list(self.input_shape), "num_classes": self.num_classes}
        result = {
            "params": Measurement("params", float(params), "count", env=env),
            "macs": Measurement(
                "macs", float(macs), "MAC", env={**env, "convention": MACS_CONVENTION}
            ),
            "size": Measurement("size", float(size), "B", env=env),
        }
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result


class CheapEvaluator:
    """Training-free metrics of genotypes that have not been evaluated (params, MACs, LUT or
    predicted latency ...), for strategies that screen candidates (LEMONADE, RL).

    Built from a run's cheap providers; the cheap profiler runs in its fast, exact mode.
    """

    def __init__(self, providers: Sequence[MetricProvider]) -> None:
        self.providers = [p for p in providers if p.cheap]

    @classmethod
    def for_space(cls, space: SearchSpace, *, num_classes: int = 10) -> CheapEvaluator:
        """Params, MACs and size only (when a strategy is used outside a run)."""
        return cls([CheapProfileProvider(space, num_classes=num_classes, fast=True)])

    def units(self) -> dict[str, str]:
        return available_units(self.providers)

    def __call__(self, genotype: Genotype, metrics: Sequence[str]) -> dict[str, float]:
        """Values of ``metrics`` for ``genotype``, each from the first cheap provider with it."""
        out: dict[str, float] = {}
        candidate = Candidate(genotype)
        for provider in self.providers:
            share = [m for m in metrics if m in provider.units() and m not in out]
            if share:
                values = provider.evaluate(candidate, share, None)  # type: ignore[arg-type]
                out.update({m: v.value for m, v in values.items()})
        missing = [m for m in metrics if m not in out]
        if missing:
            raise ConfigError(
                f"no training-free source for {', '.join(missing)}; "
                f"cheap metrics here: {', '.join(sorted(self.units())) or 'none'}"
            )
        return out


def cheap_evaluator(providers: Sequence[MetricProvider]) -> CheapEvaluator:
    """The cheap evaluator of a run: its cheap providers, with the profiler in fast mode."""
    chosen: list[MetricProvider] = []
    for p in providers:
        if isinstance(p, CheapProfileProvider):
            p = CheapProfileProvider(
                p.space, num_classes=p.num_classes, input_shape=p.input_shape, fast=True
            )
        chosen.append(p)
    return CheapEvaluator(chosen)


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
        from hwnas.surrogates.table import open_benchmark

        providers.append(TableProvider(open_benchmark(config.benchmark, space)))
    if config.dataset and config.dataset.startswith(DATASET_PREFIX):
        from hwnas.segmentation.provider import SegmentationProvider

        segmentation = SegmentationProvider.from_config(config, space)
        providers.append(segmentation)
        num_classes, input_shape = segmentation.num_classes, tuple(segmentation.input_shape)
    elif config.dataset:
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
