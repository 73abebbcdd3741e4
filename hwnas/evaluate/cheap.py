"""Training-free metrics: the cheap profilers, and the evaluator strategies screen with."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from hwnas.errors import ConfigError
from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Measurement


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
        self.providers = [p for p in providers if p.cheap_metrics()]

    @classmethod
    def for_space(cls, space: SearchSpace, *, num_classes: int = 10) -> CheapEvaluator:
        """Params, MACs and size only (when a strategy is used outside a run)."""
        return cls([CheapProfileProvider(space, num_classes=num_classes, fast=True)])

    def units(self) -> dict[str, str]:
        units: dict[str, str] = {}
        for provider in self.providers:
            cheap = provider.cheap_metrics()
            for metric, unit in provider.units().items():
                if metric in cheap:
                    units.setdefault(metric, unit)
        return units

    def __call__(self, genotype: Genotype, metrics: Sequence[str]) -> dict[str, float]:
        """Values of ``metrics`` for ``genotype``, each from the first cheap provider with it."""
        out: dict[str, float] = {}
        candidate = Candidate(genotype)
        for provider in self.providers:
            share = [m for m in metrics if m in provider.cheap_metrics() and m not in out]
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
