"""Evaluators and a search driver for the executor tests (test_executors.py, test_ray.py).

Module-level, so spawned worker processes can import them (they inherit the test's sys.path)
and Ray can ship them by value (``register_pickle_by_value``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.evaluate.evaluator import Evaluator
from hwnas.objectives.base import parse_objective
from hwnas.runner import Budget, Executor, run
from hwnas.search import make_strategy
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.types import Candidate, Measurement, Trial


class SleepProvider(MetricProvider):
    """One metric that takes ``seconds`` (times ``1 + spread * (hash % 3)``) to produce.

    ``log_dir`` records each evaluation's [start, end] in ``<metric>.log``; in ``kill_dir`` a
    file ``kill-N`` makes trial N's worker SIGKILL itself once (the file is removed first),
    ``always-N`` every time.
    """

    def __init__(
        self,
        *,
        metric: str,
        seconds: float,
        spread: float = 0.0,
        resource: str | None = None,
        exclusive: bool = False,
        log_dir: str | None = None,
        kill_dir: str | None = None,
    ) -> None:
        self.metric = metric
        self.seconds = seconds
        self.spread = spread
        self.resource = resource
        self.exclusive = exclusive
        self.cheap = False
        self.log_dir = log_dir
        self.kill_dir = kill_dir

    def units(self) -> Mapping[str, str]:
        return {self.metric: "s"}

    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        if self.kill_dir is not None:
            once = Path(self.kill_dir) / f"kill-{ctx.trial}"
            if once.exists():
                once.unlink()
                os.kill(os.getpid(), signal.SIGKILL)
            if (Path(self.kill_dir) / f"always-{ctx.trial}").exists():
                os.kill(os.getpid(), signal.SIGKILL)
        digest = int(hashlib.sha1(candidate.genotype.key().encode()).hexdigest(), 16)
        start = time.time()
        time.sleep(self.seconds * (1 + self.spread * (digest % 3)))
        end = time.time()
        if self.log_dir is not None:
            with open(Path(self.log_dir) / f"{self.metric}.log", "a") as log:
                log.write(f"{start!r} {end!r} {os.getpid()}\n")
        value = (digest % 10_000) / 100 + (digest >> 20) % 7
        return {self.metric: Measurement(self.metric, float(value), "s", device=self.resource)}


def sleepy_evaluator(
    *,
    seconds: float = 0.0,
    spread: float = 0.0,
    measure_seconds: float | None = None,
    log_dir: str | None = None,
    kill_dir: str | None = None,
    measure_kill_dir: str | None = None,
) -> Evaluator:
    """``cost`` like a training on the CPU; with ``measure_seconds``, ``latency`` timed
    exclusively on the CPU (like a measured DeviceProvider)."""
    providers = [
        SleepProvider(
            metric="cost",
            seconds=seconds,
            spread=spread,
            resource="cpu",
            log_dir=log_dir,
            kill_dir=kill_dir,
        )
    ]
    if measure_seconds is not None:
        providers.append(
            SleepProvider(
                metric="latency",
                seconds=measure_seconds,
                resource="cpu",
                exclusive=True,
                log_dir=log_dir,
                kill_dir=measure_kill_dir,
            )
        )
    return Evaluator(providers, [p.metric for p in providers])


def search(
    out: Path,
    factory: Callable[[], Evaluator],
    executor: Executor | None,
    *,
    budget: int,
    strategy: str = "random",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> list[Trial]:
    """A search over NAS-Bench-201 cells with ``factory``'s evaluator; all trials, in order."""
    space = make_space("nb201")
    evaluator = factory()
    objectives = [parse_objective(f"{m}:min") for m in evaluator.metrics]
    chosen = make_strategy(
        strategy, space=space, objectives=objectives, seed=seed, options=dict(options or {})
    )
    store = RunStore.create(out, {})
    try:
        run(
            store=store,
            strategy=chosen,
            evaluator=evaluator,
            objectives=objectives,
            constraints=[],
            budget=Budget(evaluations=budget),
            executor=executor,
            seed=seed,
        )
        return store.trials()
    finally:
        store.close()


def intervals(log: Path) -> list[tuple[float, float]]:
    if not log.exists():
        return []
    return [
        (float(a), float(b))
        for a, b, _ in (line.split() for line in log.read_text().split("\n") if line)
    ]


def overlaps(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> int:
    """How many pairs of intervals, one from ``a`` and one from ``b``, overlap in time.

    With ``a is b`` each unordered pair of distinct intervals counts once (an interval does
    not overlap itself)."""
    if a is b:
        return sum(
            1 for i, (s1, e1) in enumerate(a) for s2, e2 in a[i + 1 :] if s1 < e2 and s2 < e1
        )
    return sum(1 for s1, e1 in a for s2, e2 in b if s1 < e2 and s2 < e1)
