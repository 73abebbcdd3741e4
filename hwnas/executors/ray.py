"""RayExecutor: evaluations as Ray tasks with resource requests; one profiling actor per device.

Imported only when the ray executor is chosen (``pip install 'hwnas[ray]'``). Phase 1 of each
trial (training, cheap profiling) is a Ray task asking for ``cpus_per_trial`` CPUs and
``gpus_per_trial`` GPUs (fractions share a GPU); phase 2 (exclusive measurements) goes to one
long-lived profiling actor per device, which measures under the device's exclusive gate (see
:mod:`hwnas.executors`). Results come back to the driver, which alone writes the store.

Ray's own retries are off: a dead worker or actor surfaces here as a ``RayError`` and the
trial is resubmitted through the same retry policy as the process pool, so the reason a
trial finally failed is recorded. The driver owns every task and actor, so killing the driver
stops its evaluations and ``hwnas resume`` attaches again and re-queues them.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError

from hwnas.errors import ConfigError
from hwnas.evaluate.evaluator import Evaluator
from hwnas.executors.pipeline import (
    EvaluatorFactory,
    Job,
    MeasurePlan,
    Pipeline,
    PipelinedExecutor,
    build_in_worker,
    failed,
    run_jobs,
)
from hwnas.types import Trial

# Per worker process: the evaluator of the latest executor (by token), so each Ray worker
# process builds a run's evaluator once and reuses it for every task of that run.
_EVALUATORS: dict[str, tuple[Evaluator | None, str | None]] = {}


def _phase_one(token: str, factory: EvaluatorFactory, job: Job) -> list[tuple[Trial, MeasurePlan]]:
    if token not in _EVALUATORS:
        _EVALUATORS.clear()  # one evaluator per process: an earlier run's table or data goes
        _EVALUATORS[token] = build_in_worker(factory)
    evaluator, problem = _EVALUATORS[token]
    return run_jobs(evaluator, problem, [job])


class _Profiler:
    """The profiling actor of one device: measures batches of trials, one batch at a time."""

    def __init__(self, factory: EvaluatorFactory) -> None:
        self._evaluator, self._problem = build_in_worker(factory)

    def measure(self, jobs: list[Job]) -> list[tuple[Trial, MeasurePlan]]:
        return run_jobs(self._evaluator, self._problem, jobs)


class RayExecutor(PipelinedExecutor):
    """Phase 1 as Ray tasks, phase 2 on profiling actors (see the module docstring)."""

    def __init__(
        self,
        *,
        evaluator_factory: EvaluatorFactory,
        workers: int | None = None,
        address: str | None = None,
        max_retries: int = 2,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        profiler_gpus: float = 0.0,
    ) -> None:
        # Shut down only a Ray we connected or started; a caller's own ray.init stays.
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=False,  # worker output goes to Ray's log files, not the CLI
                    logging_level=logging.WARNING,
                )
            except ConnectionError as exc:
                raise ConfigError(
                    f"cannot reach a Ray cluster at '{address}' ({exc}); start one with "
                    "`ray start --head`, or leave out --ray-address for a local Ray"
                ) from None
        self._token = uuid.uuid4().hex
        self._factory = evaluator_factory  # by value to actors: they must outlive any ref
        self._factory_ref = ray.put(evaluator_factory)  # once, for every task
        self._task = ray.remote(_phase_one).options(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0
        )
        self._profiler_cls = ray.remote(_Profiler)
        self._profiler_gpus = profiler_gpus
        self.workers = workers or _capacity(cpus_per_trial, gpus_per_trial)
        self._pipeline = Pipeline(max_retries=max_retries)
        self._running: dict[Any, list[Job]] = {}  # ObjectRef -> the jobs it computes
        self._profilers: dict[str, Any] = {}  # device -> actor handle
        self._measuring: dict[str, Any] = {}  # device -> ObjectRef of its current batch

    def wait(self) -> list[Trial]:
        while not self._pipeline.done:
            self._dispatch()
            refs = list(self._running)
            if not refs:
                raise RuntimeError("wait() with no evaluation in flight")
            ray.wait(refs, num_returns=1)
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                self._collect(ref)
        return self._pipeline.take_done()

    def close(self) -> None:
        if not ray.is_initialized():
            return
        for ref, jobs in self._running.items():  # after Ctrl-C or an error: re-run on resume
            if not jobs[0].plan:  # a task (actor calls end with their actor, below)
                ray.cancel(ref, force=True)
        for actor in self._profilers.values():
            ray.kill(actor)
        self._running, self._profilers, self._measuring = {}, {}, {}
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    # -- internals ---------------------------------------------------------------------------
    def _dispatch(self) -> None:
        p = self._pipeline
        while p.queue:
            job = p.queue.popleft()
            self._running[self._task.remote(self._token, self._factory_ref, job)] = [job]
        for device in p.measure:
            batch = [] if device in self._measuring else p.next_batch(device)
            if batch:
                actor = self._profilers.get(device)
                if actor is None:
                    actor = self._profilers[device] = self._profiler_cls.options(
                        num_cpus=0,  # it runs while trainings wait at the gate
                        num_gpus=self._profiler_gpus if device.startswith("cuda") else 0,
                        max_restarts=-1,  # a crashed profiler comes back for the next batch
                        max_task_retries=0,
                    ).remote(self._factory)
                ref = actor.measure.remote(batch)
                self._running[ref] = batch
                self._measuring[device] = ref

    def _collect(self, ref: Any) -> None:
        jobs = self._running.pop(ref)
        for device, current in list(self._measuring.items()):
            if current == ref:
                del self._measuring[device]
        try:
            reply = ray.get(ref)
        except RayTaskError as exc:  # our own code raised outside an evaluation: not retried
            reason = f"Ray task failed: {exc}".strip()
            for job in jobs:
                self._pipeline.finished(job, failed(job.trial, reason))
            return
        except RayError as exc:  # a worker, actor or node died: run the jobs again
            self._pipeline.crashed(jobs, f"Ray worker died ({type(exc).__name__})")
            return
        for job, (trial, plan) in zip(jobs, reply):
            self._pipeline.finished(job, trial, plan)


def _capacity(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the cluster runs at once with these requests."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) / cpus_per_trial
    if gpus_per_trial > 0:
        slots = min(slots, resources.get("GPU", 0.0) / gpus_per_trial)
    return max(1, int(slots))
