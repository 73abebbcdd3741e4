"""The process-pool executor: spawned workers on this machine, one profiler per device."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from typing import Any

from hwnas.errors import ConfigError
from hwnas.executors.pipeline import (
    EvaluatorFactory,
    Job,
    Pipeline,
    PipelinedExecutor,
    build_in_worker,
    run_jobs,
)
from hwnas.types import Trial


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


def _exit_with_parent() -> None:
    """Exit when the driver dies (even by SIGKILL), instead of training on as an orphan."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_ready([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="hwnas-parent-watch").start()
