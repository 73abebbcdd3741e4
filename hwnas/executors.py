"""Parallel executors: a pool of worker processes on one machine, or Ray (``executors_ray``).

Every evaluation runs in two phases. Phase 1 (training, table lookups, cheap profiling) runs
in a worker, any number side by side. Phase 2 (metrics timed on a device: measured latency,
energy; providers with ``exclusive=True``) runs in one profiling process per device, holding
that device's :class:`~hwnas.gate.DeviceGate` exclusively while phase-1 work holds it shared,
so nothing trains on a device while it is measured. Workers build their evaluator once, from
a picklable factory, and send finished trials back; the driver alone writes the store.

A worker that dies (segfault, out-of-memory kill, SIGKILL) is replaced and its trial is run
again, up to ``max_retries`` times; then the trial is FAILED with the reason. An exception
inside an evaluation is not retried: it fails the trial at once, as with the local executor.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field

from hwnas.errors import ConfigError
from hwnas.evaluate import EvalContext, Evaluator
from hwnas.gate import DeviceGate, shared_gates
from hwnas.runner import Executor, evaluate_trial
from hwnas.types import Trial, TrialState

if TYPE_CHECKING:
    from hwnas.config import RunConfig
    from hwnas.spaces.base import SearchSpace

EvaluatorFactory = Callable[[], Evaluator]
#: Phase 2 of a trial: (device, metrics) pairs still to measure, in order.
MeasurePlan = tuple[tuple[str, tuple[str, ...]], ...]


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
    from hwnas.evaluate import build_evaluator
    from hwnas.spaces import make_space

    run_config = RunConfig.from_dict(config)
    space = make_space(run_config.space, run_config.space_options)
    return build_evaluator(run_config, space, metrics)


def make_executor(config: RunConfig, space: SearchSpace, evaluator: Evaluator) -> Executor:
    """The parallel executor ``config.executor`` asks for. Workers rebuild the space and the
    evaluator from the config (the driver's ``space`` and ``evaluator`` stay here)."""
    settings = ExecutorSettings.from_mapping(config.executor)
    factory = functools.partial(evaluator_from_config, config.to_dict(), list(evaluator.metrics))
    if settings.kind == "process":
        return ProcessExecutor(
            evaluator_factory=factory,
            workers=settings.workers
            or max(1, int((os.cpu_count() or 1) / settings.cpus_per_trial)),
            max_retries=settings.max_retries,
            threads_per_worker=max(1, round(settings.cpus_per_trial)),
        )
    if settings.kind == "ray":
        try:
            from hwnas.executors_ray import RayExecutor
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
    raise ConfigError(f"no parallel executor '{settings.kind}'; choose process or ray")


# -- the two phases, as run inside a worker --------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One phase of one trial's evaluation, as sent to a worker."""

    trial: Trial
    ctx: EvalContext
    plan: MeasurePlan = ()  # empty: phase 1; else phase 2 measures plan[0] exclusively

    @property
    def resource(self) -> str | None:
        return self.plan[0][0] if self.plan else None


def run_phase_one(evaluator: Evaluator, job: Job) -> tuple[Trial, MeasurePlan]:
    """Everything but the exclusive measurements, holding the used devices shared; returns the
    trial and what phase 2 must still measure (nothing when phase 1 failed)."""
    first, second = evaluator.phases()
    with shared_gates(evaluator.resources(first)):
        trial = evaluate_trial(evaluator, job.trial, job.ctx, only=first)
    if trial.state is not TrialState.COMPLETE:
        return trial, ()
    return trial, tuple((device, tuple(metrics)) for device, metrics in second.items())


def run_phase_two(evaluator: Evaluator, jobs: Sequence[Job]) -> list[Trial]:
    """Measure a batch of trials on one device, which is held exclusively for the whole batch
    (one wait for running trainings to finish, however many trials queued up meanwhile)."""
    resource = jobs[0].resource
    assert resource is not None and all(job.resource == resource for job in jobs)
    with DeviceGate(resource=resource).exclusive():
        return [
            merge_phases(
                job.trial, evaluate_trial(evaluator, job.trial, job.ctx, only=job.plan[0][1])
            )
            for job in jobs
        ]


def merge_phases(first: Trial, second: Trial) -> Trial:
    return replace(
        second,
        measurements={**first.measurements, **second.measurements},
        started=first.started,
    )


def failed(trial: Trial, reason: str) -> Trial:
    now = time.time()
    return replace(
        trial, state=TrialState.FAILED, error=reason, started=trial.started or now, finished=now
    )


class Retries:
    """Counts crashes per trial: run it again, or give up with the reason."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries
        self._causes: dict[int, list[str]] = {}

    def crashed(self, trial: Trial, cause: str) -> Trial | None:
        """The FAILED trial once retries are spent; None while it should run again."""
        causes = self._causes.setdefault(trial.number, [])
        causes.append(cause)
        if len(causes) <= self.max_retries:
            return None
        del self._causes[trial.number]
        if len(set(causes)) == 1:
            text = f"{cause} {len(causes)} times" if len(causes) > 1 else cause
        else:
            text = "; ".join(causes)
        retries = f"{self.max_retries} {'retry' if self.max_retries == 1 else 'retries'}"
        return failed(trial, f"{text} (gave up after {retries})")

    def forget(self, number: int) -> None:
        self._causes.pop(number, None)

    def count(self, number: int) -> int:
        return len(self._causes.get(number, ()))


class Pipeline:
    """Bookkeeping common to the parallel executors: phase-1 queue, phase-2 queues per device,
    retries, and the finished trials waiting for :meth:`Executor.wait`."""

    def __init__(self, *, max_retries: int) -> None:
        self.retries = Retries(max_retries)
        self.queue: deque[Job] = deque()  # phase-1 jobs not yet sent
        self.measure: dict[str, deque[Job]] = {}  # phase-2 jobs by device, not yet sent
        self.in_flight = 0  # trials submitted and not yet returned
        self.phase_one = 0  # of which in phase 1 (queued or running)
        self.done: list[Trial] = []

    def room(self, workers: int) -> int:
        """Trials to start now: a free worker each, with a bounded backlog for phase 2 (which
        may lag behind) so that the strategy's asks stay recent."""
        return max(0, min(workers - self.phase_one, 2 * workers - self.in_flight))

    def submit(self, trial: Trial, ctx: EvalContext) -> None:
        self.queue.append(Job(trial, ctx))
        self.in_flight += 1
        self.phase_one += 1

    def finished(self, job: Job, trial: Trial, plan: MeasurePlan = ()) -> None:
        """A phase ended: queue the next one, or hand the trial back."""
        if not job.plan:
            self.phase_one -= 1
        else:
            plan = job.plan[1:] if trial.state is TrialState.COMPLETE else ()
        if plan:
            self.measure.setdefault(plan[0][0], deque()).append(Job(trial, job.ctx, plan))
            return
        self.retries.forget(trial.number)
        self.in_flight -= 1
        self.done.append(trial)

    def crashed(self, jobs: Iterable[Job], cause: str) -> None:
        """Workers died running ``jobs``: queue them again, or fail the trials."""
        for job in jobs:
            gave_up = self.retries.crashed(job.trial, cause)
            if gave_up is not None:
                self.finished(job, gave_up)
            elif job.plan:
                self.measure.setdefault(job.plan[0][0], deque()).appendleft(job)
            else:
                self.queue.appendleft(job)

    def next_batch(self, device: str) -> list[Job]:
        """The phase-2 jobs to send to ``device``'s profiler now: all that queued up, or one
        alone after a crash, so that one trial that kills the profiler fails by itself."""
        queue = self.measure.get(device)
        if not queue:
            return []
        if any(self.retries.count(job.trial.number) for job in queue):
            return [queue.popleft()]
        batch = list(queue)
        queue.clear()
        return batch

    def take_done(self) -> list[Trial]:
        done, self.done = self.done, []
        return done


# -- the process pool ------------------------------------------------------------------------


class PipelinedExecutor(Executor):
    """An asynchronous executor whose jobs go through a :class:`Pipeline` to ``workers`` slots.

    Subclasses set ``workers`` and ``_pipeline`` and implement ``_dispatch`` and ``wait``.
    """

    asynchronous = True
    workers: int
    _pipeline: Pipeline

    def _dispatch(self) -> None:
        raise NotImplementedError

    def has_room(self) -> bool:
        return self.room() > 0

    def room(self) -> int:
        return self._pipeline.room(self.workers)

    def submit(self, trial: Trial, ctx: EvalContext) -> None:
        self._pipeline.submit(trial, ctx)
        self._dispatch()

    def busy(self) -> int:
        return self._pipeline.in_flight


class ProcessExecutor(PipelinedExecutor):
    """``workers`` spawned processes for phase 1 and one profiling process per device."""

    def __init__(
        self,
        *,
        evaluator_factory: EvaluatorFactory,
        workers: int,
        max_retries: int = 2,
        threads_per_worker: int | None = 1,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, not {workers}")
        self.workers = workers
        self._context = mp.get_context("spawn")  # fork would copy the driver's threads and locks
        self._factory = evaluator_factory
        self._threads = threads_per_worker
        self._pipeline = Pipeline(max_retries=max_retries)
        # Started now, so evaluators build while the driver prepares the first candidates.
        self._pool = [self._spawn(threads_per_worker) for _ in range(workers)]
        self._profilers: dict[str, _Worker] = {}

    def wait(self) -> list[Trial]:
        while not self._pipeline.done:
            self._dispatch()
            busy = [w for w in self._workers() if w.jobs]
            if not busy:
                raise RuntimeError("wait() with no evaluation in flight")
            ready = set(wait_ready([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._collect(worker)
        return self._pipeline.take_done()

    def close(self) -> None:
        for worker in self._workers():
            worker.stop()
        self._pool, self._profilers = [], {}

    # -- internals ---------------------------------------------------------------------------
    def _spawn(self, threads: int | None) -> _Worker:
        return _Worker(self._context, self._factory, threads=threads)

    def _workers(self) -> list[_Worker]:
        return [*self._pool, *self._profilers.values()]

    def _dispatch(self) -> None:
        p = self._pipeline
        for i, worker in enumerate(self._pool):
            if not p.queue:
                break
            if not worker.jobs:
                if not worker.process.is_alive():  # died between jobs: nothing to retry
                    worker = self._pool[i] = self._spawn(self._threads)
                worker.send([p.queue.popleft()])
        for device in p.measure:
            worker = self._profilers.get(device)
            if worker is None or not worker.jobs:
                batch = p.next_batch(device)
                if not batch:
                    continue
                if worker is None or not worker.process.is_alive():
                    worker = self._profilers[device] = self._spawn(None)
                worker.send(batch)

    def _collect(self, worker: _Worker) -> None:
        jobs = worker.jobs
        try:
            reply = worker.conn.recv() if worker.conn.poll() else None
        except (EOFError, OSError):
            reply = None
        if reply is None:  # the process died with the jobs
            worker.process.join(timeout=5)
            cause = worker.cause()
            worker.stop()
            self._replace(worker)
            self._pipeline.crashed(jobs, cause)
            return
        worker.jobs = []
        for job, (trial, plan) in zip(jobs, reply):
            self._pipeline.finished(job, trial, plan)

    def _replace(self, dead: _Worker) -> None:
        for i, worker in enumerate(self._pool):
            if worker is dead:
                self._pool[i] = self._spawn(self._threads)
        for device, worker in list(self._profilers.items()):
            if worker is dead:
                del self._profilers[device]  # respawned on its next batch


class _Worker:
    """A spawned process that builds an evaluator once and runs the jobs sent over a pipe."""

    def __init__(self, context: Any, factory: EvaluatorFactory, *, threads: int | None) -> None:
        self.jobs: list[Job] = []
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, factory, threads), daemon=True, name="hwnas-worker"
        )
        self.process.start()
        child.close()  # so the worker's end is the only one: EOF there when the driver dies

    def send(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        with contextlib.suppress(OSError):  # died meanwhile: wait() sees it and retries
            self.conn.send(jobs)

    def cause(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown signal"
            return f"worker process died (signal {-code}, {name})"
        return f"worker process died (exit code {code})"

    def stop(self) -> None:
        if self.process.is_alive() and not self.jobs:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(timeout=5)
        if self.process.is_alive():  # busy (Ctrl-C, error) or stuck: its trial is re-run later
            self.process.terminate()
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.conn.close()


def _serve(conn: Connection, factory: EvaluatorFactory, threads: int | None) -> None:
    """Worker main loop: lists of jobs in, lists of (trial, remaining plan) out."""
    _exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if threads is not None:  # N workers x all-core BLAS would oversubscribe the CPU
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
    evaluator, problem = build_in_worker(factory)
    while True:
        try:
            jobs = conn.recv()
        except EOFError:
            return
        if jobs is None:
            return
        conn.send(run_jobs(evaluator, problem, jobs))


def build_in_worker(factory: EvaluatorFactory) -> tuple[Evaluator | None, str | None]:
    try:
        return factory(), None
    except Exception as exc:  # noqa: BLE001 - reported as the reason of every trial
        return None, f"could not build the evaluator in a worker: {type(exc).__name__}: {exc}"


def run_jobs(
    evaluator: Evaluator | None, problem: str | None, jobs: Sequence[Job]
) -> list[tuple[Trial, MeasurePlan]]:
    """Run a batch sent to one worker: phase-1 jobs one by one, phase-2 jobs as one batch."""
    if evaluator is None:
        return [(failed(job.trial, problem or "no evaluator"), ()) for job in jobs]
    if jobs[0].plan:
        return [(trial, ()) for trial in run_phase_two(evaluator, jobs)]
    return [run_phase_one(evaluator, job) for job in jobs]


def _exit_with_parent() -> None:
    """Exit when the driver dies (even by SIGKILL), instead of training on as an orphan."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_ready([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="hwnas-parent-watch").start()
