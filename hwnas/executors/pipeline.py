"""Parallel executors: a pool of worker processes on one machine, or Ray (``executors_ray``).

Every evaluation runs in two phases. Phase 1 (training, table lookups, cheap profiling) runs
in a worker, any number side by side. Phase 2 (metrics timed on a device: measured latency,
energy; providers with ``exclusive=True``) runs in one profiling process per device, holding
that device's :class:`~hwnas.executors.gate.DeviceGate` exclusively while phase-1 work holds it
shared, so nothing trains on a device while it is measured. Workers build their evaluator once, from
a picklable factory, and send finished trials back; the driver alone writes the store.

A worker that dies (segfault, out-of-memory kill, SIGKILL) is replaced and its trial is run
again, up to ``max_retries`` times; then the trial is FAILED with the reason. An exception
inside an evaluation is not retried: it fails the trial at once, as with the local executor.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hwnas.evaluate.base import EvalContext
from hwnas.evaluate.evaluator import Evaluator
from hwnas.executors.gate import DeviceGate, shared_gates
from hwnas.runner import Executor, evaluate_trial
from hwnas.types import Trial, TrialState

if TYPE_CHECKING:
    pass

EvaluatorFactory = Callable[[], Evaluator]
#: Phase 2 of a trial: (device, metrics) pairs still to measure, in order.
MeasurePlan = tuple[tuple[str, tuple[str, ...]], ...]


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
