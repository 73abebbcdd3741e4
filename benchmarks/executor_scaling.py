"""Throughput of the parallel executors with fixed-cost evaluations, and their per-trial overhead.

Every evaluation burns the same amount of CPU work (a pure-Python loop, calibrated once in the
driver to ``--seconds``; single-threaded, so N workers need N free cores). For the process and
Ray executors with 1 and 2 workers it runs a random search of ``--trials`` such evaluations
through ``hwnas.runner.run`` (SQLite store, strategy, driver and all) and reports:

- throughput: trials per second in steady state, from the workers' finish times after the first
  round (so process spawn and Ray worker start-up are not counted; the wall time is shown too);
- speedup: throughput with 2 workers over 1 worker (target >= 1.8 on a quiet 2-core machine);
- overhead: milliseconds per trial with a zero-cost evaluation and 1 worker; the local executor's
  row is the loop itself (strategy, SQLite writes), the others add their executor's cost.

Configurations run interleaved, ``--repeats`` rounds, and the median is reported.

    python benchmarks/executor_scaling.py                                   # full size
    python benchmarks/executor_scaling.py --trials 12 --seconds 0.2 --overhead-trials 40 --repeats 1
    python benchmarks/executor_scaling.py --executors process              # without Ray
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.evaluate.evaluator import Evaluator
from hwnas.objectives.base import parse_objective
from hwnas.runner import Budget, Executor, run
from hwnas.search import make_strategy
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.types import Candidate, Measurement


def burn(work: int) -> int:
    """``work`` iterations of integer arithmetic: a fixed amount of single-core CPU time."""
    total = 0
    for i in range(work):
        total += i * i % 7
    return total


class BurnProvider(MetricProvider):
    """``cost``: a value from the genotype, after ``work`` units of CPU work."""

    cheap = False

    def __init__(self, *, work: int) -> None:
        self.work = work

    def units(self) -> Mapping[str, str]:
        return {"cost": "s"}

    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        burn(self.work)
        digest = hashlib.sha1(candidate.genotype.key().encode()).digest()
        return {"cost": Measurement("cost", digest[0] / 255, "s")}


def burn_evaluator(work: int) -> Evaluator:
    return Evaluator([BurnProvider(work=work)], ["cost"])


def calibrate(seconds: float) -> int:
    """Work units that take ``seconds`` on one core of this machine (best of 3)."""
    probe = 200_000
    best = min(_timed(functools.partial(burn, probe)) for _ in range(3))
    return max(1, int(probe * seconds / best))


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make(kind: str, work: int, workers: int, ray_address: str | None) -> Executor | None:
    factory = functools.partial(burn_evaluator, work)
    if kind == "local":
        return None
    if kind == "process":
        from hwnas.executors.process import ProcessExecutor

        return ProcessExecutor(evaluator_factory=factory, workers=workers)
    from hwnas.executors.ray import RayExecutor

    return RayExecutor(evaluator_factory=factory, workers=workers, address=ray_address)


def measure(
    kind: str, *, work: int, workers: int, trials: int, ray_address: str | None
) -> dict[str, float]:
    """One search; steady-state throughput (trials/s), seconds per trial, and wall time."""
    space = make_space("nb201")
    objectives = [parse_objective("cost:min")]
    strategy = make_strategy("random", space=space, objectives=objectives, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(Path(tmp) / "run", {})
        start = time.perf_counter()
        executor = make(kind, work, workers, ray_address)
        run(
            store=store,
            strategy=strategy,
            evaluator=burn_evaluator(work),
            objectives=objectives,
            constraints=[],
            budget=Budget(evaluations=trials),
            executor=executor,
        )
        wall = time.perf_counter() - start
        finished = sorted(t.finished for t in store.trials() if t.finished is not None)
        store.close()
    assert len(finished) == trials, f"{kind}: only {len(finished)} of {trials} trials finished"
    # From the end of the first round to the last result: start-up is not throughput.
    span = finished[-1] - finished[workers - 1]
    rate = (trials - workers) / span if span > 0 else float("inf")
    return {"throughput": rate, "per_trial": 1 / rate, "wall": wall}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40, help="fixed-cost trials per run")
    parser.add_argument("--seconds", type=float, default=0.5, help="cost of one evaluation")
    parser.add_argument("--overhead-trials", type=int, default=300, help="zero-cost trials")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--executors", default="process,ray", help="comma-separated")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--ray-address", default=None, help="attach to this Ray cluster")
    args = parser.parse_args(argv)
    kinds = [k for k in args.executors.split(",") if k]
    configs = [("local", 1)] + [(k, int(w)) for k in kinds for w in args.workers.split(",")]
    if "ray" in kinds:
        import ray

        # One Ray for every measurement (RayExecutor leaves a Ray it did not start running).
        ray.init(
            address=args.ray_address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="warning",
        )
    work = calibrate(args.seconds)
    throughput: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    wall: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    overhead: dict[str, list[float]] = {k: [] for k in ["local", *kinds]}
    # Rounds interleave the configurations: a shared machine drifts between minutes.
    for _ in range(args.repeats):
        for kind, workers in configs:
            fixed = measure(
                kind, work=work, workers=workers, trials=args.trials, ray_address=args.ray_address
            )
            throughput[(kind, workers)].append(fixed["throughput"])
            wall[(kind, workers)].append(fixed["wall"])
        for kind in overhead:
            zero = measure(
                kind, work=0, workers=1, trials=args.overhead_trials, ray_address=args.ray_address
            )
            overhead[kind].append(zero["per_trial"])
    print(f"`{shlex.join(['python', 'benchmarks/executor_scaling.py', *sys.argv[1:]])}`\n")
    print(
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; each evaluation {args.seconds} s of one core "
        f"({work:,} work units); {args.trials} trials per run; overhead from "
        f"{args.overhead_trials} zero-cost trials; median of {args.repeats} interleaved rounds\n"
    )
    print(
        "| executor | workers | throughput (trials/s) | speedup over 1 worker | wall (s) | "
        "overhead per trial (ms) |"
    )
    print("|---|---|---|---|---|---|")
    for kind, workers in configs:
        rate = statistics.median(throughput[(kind, workers)])
        base = statistics.median(throughput[(kind, 1)]) if (kind, 1) in throughput else rate
        cost = f"{statistics.median(overhead[kind]) * 1e3:.2f}" if workers == 1 else ""
        row = (
            kind,
            workers,
            f"{rate:.3f}",
            f"{rate / base:.2f}x",
            f"{statistics.median(wall[(kind, workers)]):.1f}",
            cost,
        )
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
