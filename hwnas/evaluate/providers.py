"""A run's metric providers, built from its config: the one module that knows them all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwnas.evaluate.base import MetricProvider
from hwnas.evaluate.cheap import CheapProfileProvider
from hwnas.evaluate.evaluator import Evaluator
from hwnas.registry import Registry
from hwnas.segmentation import DATASET_PREFIX
from hwnas.spaces.base import SearchSpace

if TYPE_CHECKING:
    from hwnas.config import RunConfig


@dataclass
class Shape:
    """The network's input and output as the providers built so far fix them."""

    num_classes: int
    input_shape: tuple[int, ...]


#: (config, space, shape) -> a provider, or None when the config does not ask for it.
ProviderBuilder = Callable[["RunConfig", SearchSpace, Shape], "MetricProvider | None"]


def _table(config: RunConfig, space: SearchSpace, shape: Shape) -> MetricProvider | None:
    if not config.benchmark:
        return None
    from hwnas.evaluate.table import TableProvider, TabularBenchmark
    from hwnas.surrogates.table import PREFIX, SurrogateBenchmark

    if config.benchmark.startswith(PREFIX):
        return TableProvider(SurrogateBenchmark.load(config.benchmark[len(PREFIX) :], space))
    bad_cells = str(config.profiling.get("bad_cells", "error"))
    return TableProvider(TabularBenchmark(path=config.benchmark, space=space, bad_cells=bad_cells))


def _training(config: RunConfig, space: SearchSpace, shape: Shape) -> MetricProvider | None:
    if not config.dataset:
        return None
    provider: Any
    if config.dataset.startswith(DATASET_PREFIX):
        from hwnas.segmentation.provider import SegmentationProvider

        provider = SegmentationProvider.from_config(config, space)
    else:
        from hwnas.training.provider import TrainingProvider

        provider = TrainingProvider.from_config(config, space)
    shape.num_classes, shape.input_shape = provider.num_classes, tuple(provider.input_shape)
    return provider  # type: ignore[no-any-return]


def _device(config: RunConfig, space: SearchSpace, shape: Shape) -> MetricProvider | None:
    if not config.device:
        return None
    from hwnas.profilers.provider import DeviceProvider

    return DeviceProvider.from_config(
        config, space, num_classes=shape.num_classes, input_shape=shape.input_shape
    )


def _profile(config: RunConfig, space: SearchSpace, shape: Shape) -> MetricProvider | None:
    return CheapProfileProvider(space, num_classes=shape.num_classes, input_shape=shape.input_shape)


#: The providers a run can have, in priority order (the first that offers a metric gives it):
#: table columns win; then training (error, accuracy, train_time), which also fixes the number
#: of classes and the input shape for the profilers; then the target device (latency, memory,
#: energy ...); the cheap profilers (params, macs, size) come last.
PROVIDERS: Registry[ProviderBuilder] = Registry("metric provider")
PROVIDERS.add("table", f"{__name__}:_table", "columns of a benchmark table (--benchmark)")
PROVIDERS.add("training", f"{__name__}:_training", "error and accuracy from training (--dataset)")
PROVIDERS.add("device", f"{__name__}:_device", "latency, memory, energy on --device")
PROVIDERS.add("profile", f"{__name__}:_profile", "params, MACs and size of the built network")


def build_providers(config: RunConfig, space: SearchSpace) -> list[MetricProvider]:
    """The metric providers a run's config asks for, in :data:`PROVIDERS` order."""
    shape = Shape(10, tuple(space.input_shape))
    providers: list[MetricProvider] = []
    for name in PROVIDERS.names():
        if name == "device":  # a profiling input shape overrides the dataset's
            shape.input_shape = tuple(config.profiling.get("input_shape") or shape.input_shape)
        provider = PROVIDERS.get(name)(config, space, shape)
        if provider is not None:
            providers.append(provider)
    return providers


def build_evaluator(
    config: RunConfig, space: SearchSpace, metrics: Sequence[str], **_: Any
) -> Evaluator:
    return Evaluator(build_providers(config, space), metrics)
