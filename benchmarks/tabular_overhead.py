"""Wall seconds per 300-evaluation table run, methods interleaved seed by seed.

On a shared machine the load drifts over minutes, so timing one method's seeds after another's
compares loads, not methods. Here every seed runs each method once in turn; reported are each
method's median and the median of its per-seed ratio to the first method (the reference, e.g.
Optuna's multivariate TPE). Methods and problems as in ``tabular_search.py``.

    python benchmarks/tabular_overhead.py --problem nb201-fpga \
        --methods optuna-tpe-mv,lemonade,rl,nsga2,hillclimb,random --seeds 4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tabular_search import ALL_PROBLEMS, CHECKPOINTS, Scorer, runner_for, write_noise_free_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="nb201-fpga")
    parser.add_argument("--methods", default="optuna-tpe-mv,lemonade,rl,nsga2,hillclimb,random")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args(argv)
    problem = next(p for p in ALL_PROBLEMS if p.name == args.problem)
    methods = [m for m in args.methods.split(",") if m]
    times: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        table = write_noise_free_table(problem, workdir) if problem.noise_free else None
        scorer = Scorer(problem, table)
        for seed in range(args.seeds):
            for method in methods:
                run = runner_for(method, max(CHECKPOINTS), workdir)
                start = time.perf_counter()
                run(scorer, seed)
                times[method].append(time.perf_counter() - start)
            print(f"seed {seed}: " + ", ".join(f"{m} {v[-1]:.2f} s" for m, v in times.items()))
    reference = np.array(times[methods[0]])
    print(f"| method | s per run (median) | ratio to {methods[0]} (median per seed) |")
    print("|---|---|---|")
    for method in methods:
        values = np.array(times[method])
        print(f"| {method} | {np.median(values):.1f} | {np.median(values / reference):.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
