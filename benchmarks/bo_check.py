"""The ``bo`` strategy against its peers on the tabular problems, scored as tabular_search.py.

Runs hwnas strategies end to end (``hwnas.api.search``, store writes included) and Optuna's
TPE (``TPESampler(multivariate=True)``, ask/tell over the space's per-position choices) with the
same seeds, and reports the median normalised hypervolume after 50, 100 and 300 *distinct*
evaluations (a TPE trial that repeats an architecture is told the table's value again but not
counted) and the median wall seconds of one 300-evaluation run. Scoring (``Scorer``) is imported
from ``benchmarks/tabular_search.py``.

    python benchmarks/bo_check.py --seeds 5 --methods bo,tpe,random
    python benchmarks/bo_check.py --seeds 3 --methods lemonade --problems nb201-fpga
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tabular_search import PROBLEMS, Problem, Scorer

from hwnas.api import search

CHECKPOINTS = (50, 100, 300)


def run_hwnas(problem: Problem, strategy: str, seed: int, workdir: Path) -> list[str]:
    result = search(
        space=problem.space,
        strategy=strategy,
        objectives=list(problem.objectives),
        benchmark=problem.table,
        budget=max(CHECKPOINTS),
        seed=seed,
        out=workdir / f"{problem.name}-{strategy}-{seed}",
    )
    return [t.genotype.spec for t in result.trials if t.state.finished]


def run_tpe(scorer: Scorer, seed: int) -> list[str]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(multivariate=True, seed=seed)
    study = optuna.create_study(directions=["minimize"] * len(scorer.objectives), sampler=sampler)
    options = scorer.space.options()
    specs: list[str] = []
    seen: set[str] = set()
    for _ in range(20 * max(CHECKPOINTS)):  # bounded: TPE may keep repeating itself
        if len(specs) >= max(CHECKPOINTS):
            break
        trial = study.ask()
        idx = [trial.suggest_int(f"x{i}", 0, len(o) - 1) for i, o in enumerate(options)]
        spec = scorer.space.from_indices(idx).spec
        if spec not in seen:
            seen.add(spec)
            specs.append(spec)
        study.tell(trial, list(scorer.rows[spec]))
    return specs


def curve(scorer: Scorer, specs: Sequence[str]) -> list[float]:
    F = np.array([scorer.rows[s] for s in specs])
    return [scorer.score(F[:n]) for n in CHECKPOINTS if n <= len(F)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default="bo,tpe,random")
    parser.add_argument("--problems", default=",".join(p.name for p in PROBLEMS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for problem in [p for p in PROBLEMS if p.name in args.problems.split(",")]:
            scorer = Scorer(problem)
            print(f"\n{problem.name}: {' x '.join(problem.objectives)}, {args.seeds} seeds")
            print("| method | HV@50 | HV@100 | HV@300 | s per run (median) |")
            print("|---|---|---|---|---|")
            for method in args.methods.split(","):
                curves, seconds = [], []
                for seed in range(args.seeds):
                    start = time.perf_counter()
                    if method == "tpe":
                        specs = run_tpe(scorer, seed)
                    else:
                        specs = run_hwnas(problem, method, seed, Path(tmp))
                    seconds.append(time.perf_counter() - start)
                    curves.append(curve(scorer, specs))
                median = np.median(np.array(curves), axis=0)
                label = "Optuna TPE (multivariate)" if method == "tpe" else f"hwnas {method}"
                print(
                    f"| {label} | "
                    + " | ".join(f"{v:.3f}" for v in median)
                    + f" | {np.median(seconds):.1f} |",
                    flush=True,
                )
                results.setdefault(problem.name, {})[method] = {
                    "median_hv": median.tolist(),
                    "per_seed": curves,
                    "seconds": seconds,
                }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
