"""Contract tests over every registry: one kind of object, every entry importable and usable.

The per-kind contracts (every space samples and builds, every strategy asks and tells, every
profiler returns a Measurement) live beside their packages; this checks the registries
themselves, so a new entry that points nowhere or at the wrong kind fails here.
"""

from __future__ import annotations

import inspect

import pytest

from hwnas.api import FIDELITIES
from hwnas.config import RunConfig
from hwnas.errors import ConfigError
from hwnas.evaluate.base import MetricProvider
from hwnas.evaluate.providers import PROVIDERS, Shape, build_providers
from hwnas.executors.settings import EXECUTORS
from hwnas.profilers import PROFILERS
from hwnas.registry import Registry
from hwnas.search import STRATEGIES, strategy_parameters
from hwnas.search.base import Strategy
from hwnas.spaces import SPACES, make_space
from hwnas.spaces.base import SearchSpace
from hwnas.training.datasets.catalog import DATASETS, RAW_LOADERS
from hwnas.training.inherit import TRANSFERS

REGISTRIES = {
    "space": SPACES,
    "strategy": STRATEGIES,
    "profiler": PROFILERS,
    "weight transfer": TRANSFERS,
    "executor": EXECUTORS,
    "metric provider": PROVIDERS,
    "fidelity": FIDELITIES,
}


def entries():
    for kind, registry in REGISTRIES.items():
        for entry in registry.entries():
            yield pytest.param(kind, registry, entry.name, id=f"{kind}:{entry.name}")


@pytest.mark.parametrize(("kind", "registry", "name"), list(entries()))
def test_every_entry_resolves_to_an_object_of_its_kind(kind, registry, name):
    assert isinstance(registry, Registry) and registry.kind == kind
    entry = next(e for e in registry.entries() if e.name == name)
    assert entry.summary.strip(), f"{kind} '{name}' has no summary for the CLI to list"
    if kind == "executor" and name == "ray":
        pytest.importorskip("ray")
    obj = registry.get(name)
    if kind == "space":
        assert inspect.isclass(obj) and issubclass(obj, SearchSpace)
    elif kind == "strategy":
        assert inspect.isclass(obj) and issubclass(obj, Strategy)
        assert "space" in strategy_parameters(obj)
    else:
        assert callable(obj)


@pytest.mark.parametrize("registry", REGISTRIES.values(), ids=list(REGISTRIES))
def test_unknown_names_get_a_hint_not_a_traceback(registry):
    first = registry.names()[0]
    with pytest.raises(ConfigError, match=f"unknown {registry.kind} '{first}x'.*did you mean"):
        registry.get(first + "x")
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(first, "x:y", "again")


def test_provider_builders_follow_the_config():
    space = make_space("nb201")
    config = RunConfig(space="nb201", strategy="random", objectives=["params"])
    built = [
        PROVIDERS.get(name)(config, space, Shape(10, (3, 32, 32))) for name in PROVIDERS.names()
    ]
    # Without a table, dataset or device only the cheap profiler applies.
    assert [type(p).__name__ if p else None for p in built] == [
        None,
        None,
        None,
        "CheapProfileProvider",
    ]
    providers = build_providers(config, space)
    assert all(isinstance(p, MetricProvider) for p in providers)
    assert providers[0].units() == {"params": "count", "macs": "MAC", "size": "B"}


def test_every_dataset_names_a_raw_loader():
    assert {info.loader for info in DATASETS.values()} <= set(RAW_LOADERS)
    assert all(callable(loader) for loader in RAW_LOADERS.values())
