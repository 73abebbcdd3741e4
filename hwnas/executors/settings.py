"""Executor settings (``config.executor``) and the registry of parallel executors."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field

from hwnas.errors import ConfigError
from hwnas.evaluate.evaluator import Evaluator
from hwnas.registry import Registry

if TYPE_CHECKING:
    from hwnas.config import RunConfig
    from hwnas.executors.pipeline import EvaluatorFactory
    from hwnas.runner import Executor
    from hwnas.spaces.base import SearchSpace


ExecutorBuilder = Callable[..., "Executor"]


@dataclass(frozen=True)
class ExecutorSettings:
    """``config.executor``: where evaluations run and with what (see docs/scaling.md)."""

    kind: str = "local"  # local, process or ray
    workers: int | None = None  # parallel evaluations (default: CPUs / cpus_per_trial)
    ray_address: str | None = None  # None: Ray's default (RAY_ADDRESS, `ray start`, or local)
    max_retries: int = 2  # reruns of a trial whose worker died, before it is FAILED
    cpus_per_trial: float = 1.0  # Ray resource request (process pool: threads per worker)
    gpus_per_trial: float = 0.0  # Ray resource request; fractions share a GPU
    profiler_gpus: float = 0.0  # Ray: GPUs reserved by each GPU profiling actor

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ExecutorSettings:
        """Settings from ``config.executor`` (flags, TOML, JSON); ConfigError in one line."""
        from hwnas.schema import validate

        given = {k: v for k, v in data.items() if v is not None}
        checked = validate(_ExecutorFields, given, where="executor", error=ConfigError)
        return cls(**checked.model_dump(exclude_unset=True))


class _ExecutorFields(BaseModel):
    """Types and bounds of :class:`ExecutorSettings`; CLI text such as "2" converts."""

    kind: Literal["local", "process", "ray"] = "local"
    workers: Annotated[int, Field(ge=1)] | None = None
    ray_address: str | None = None
    max_retries: Annotated[int, Field(ge=0)] = 2
    cpus_per_trial: Annotated[float, Field(gt=0)] = 1.0
    gpus_per_trial: Annotated[float, Field(ge=0)] = 0.0
    profiler_gpus: Annotated[float, Field(ge=0)] = 0.0


def evaluator_from_config(config: Mapping[str, Any], metrics: Sequence[str]) -> Evaluator:
    """Rebuild a run's evaluator from its config (JSON), in a worker process."""
    from hwnas.config import RunConfig
    from hwnas.evaluate.providers import build_evaluator
    from hwnas.spaces import make_space

    run_config = RunConfig.from_dict(config)
    space = make_space(run_config.space, run_config.space_options)
    return build_evaluator(run_config, space, metrics)


def _process(settings: ExecutorSettings, factory: EvaluatorFactory) -> Executor:
    from hwnas.executors.process import ProcessExecutor

    return ProcessExecutor(
        evaluator_factory=factory,
        workers=settings.workers or max(1, int((os.cpu_count() or 1) / settings.cpus_per_trial)),
        max_retries=settings.max_retries,
        threads_per_worker=max(1, round(settings.cpus_per_trial)),
    )


def _ray(settings: ExecutorSettings, factory: EvaluatorFactory) -> Executor:
    try:
        from hwnas.executors.ray import RayExecutor
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise ConfigError(
            "the ray executor needs Ray: pip install 'hwnas[ray]' (or use --executor process)"
        ) from None
    return RayExecutor(
        evaluator_factory=factory,
        workers=settings.workers,
        address=settings.ray_address,
        max_retries=settings.max_retries,
        cpus_per_trial=settings.cpus_per_trial,
        gpus_per_trial=settings.gpus_per_trial,
        profiler_gpus=settings.profiler_gpus,
    )


def _local(settings: ExecutorSettings, factory: EvaluatorFactory) -> Executor:
    from hwnas.runner import LocalExecutor

    return LocalExecutor(factory())


#: Builders of executors by ``kind``: (settings, evaluator factory) -> Executor.
EXECUTORS: Registry[ExecutorBuilder] = Registry("executor")
EXECUTORS.add("local", f"{__name__}:_local", "one trial at a time, in this process (default)")
EXECUTORS.add("process", f"{__name__}:_process", "a pool of worker processes on this machine")
EXECUTORS.add("ray", f"{__name__}:_ray", "Ray tasks on a cluster (the ray extra)")


def make_executor(config: RunConfig, space: SearchSpace, evaluator: Evaluator) -> Executor:
    """The executor ``config.executor`` asks for. Workers rebuild the space and the evaluator
    from the config (the driver's ``space`` and ``evaluator`` stay here)."""
    settings = ExecutorSettings.from_mapping(config.executor)
    if settings.kind == "local":
        from hwnas.runner import LocalExecutor

        return LocalExecutor(evaluator)
    factory = functools.partial(evaluator_from_config, config.to_dict(), list(evaluator.metrics))
    return EXECUTORS.get(settings.kind)(settings, factory)
