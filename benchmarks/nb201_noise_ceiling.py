"""How much of NAS-Bench-201's true front is training noise, and what a perfect search scores.

NAS-Bench-201 trained every one of its 15,625 cells, including cells that compute the same
function (4,954 classes, see ``NB201Space.function_key``). Their accuracies differ by little
more than training noise, and at low latency the true front of each tabular problem (accuracy
x FPGA / Eyeriss latency) is made of the luckiest of them. This script measures:

- the number of distinct functions and the spread of accuracy within a function (the noise);
- for each point of the true front, how many cells at its latency compute its function and how
  far its accuracy lies above their mean;
- what a front a little below the true one scores: the true front lowered by d points;
- the normalised hypervolume (scored exactly as ``tabular_search.py``) of an *oracle* that
  knows, at every latency level, the function with the best mean accuracy and evaluates one
  (or three) cells computing it, drawn at random; median over draws. It is what a search that
  never makes a wrong choice of architecture scores without hunting for the luckiest of the
  duplicates.

    python benchmarks/nb201_noise_ceiling.py
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from tabular_search import PROBLEMS, Scorer

from hwnas.objectives.pareto import nondominated_mask


def analyse(problem_name: str, draws: int, seed: int) -> None:
    problem = next(p for p in PROBLEMS if p.name == problem_name)
    scorer = Scorer(problem)
    specs = list(scorer.rows)
    F = np.array([scorer.rows[s] for s in specs])  # (-accuracy, latency), minimised
    accuracy, latency = -F[:, 0], F[:, 1].round(6)
    functions = [scorer.space.function_key(scorer.space.parse(s)) for s in specs]

    # level -> function -> row indices
    levels: dict[float, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (level, function) in enumerate(zip(latency, functions)):
        levels[level][function].append(i)

    print(f"\n{problem.name}: {len(set(functions))} distinct functions among {len(specs)} cells")
    print(f"  {len(levels)} latency levels")
    print("  accuracy | latency | cells with its function at its latency | above their mean")
    front = np.flatnonzero(nondominated_mask(F))
    _, first = np.unique(F[front], axis=0, return_index=True)  # cells with equal rows: one
    for i in sorted(front[first], key=lambda i: latency[i]):
        twins = levels[latency[i]][functions[i]]
        excess = accuracy[i] - accuracy[twins].mean()
        print(f"  {accuracy[i]:.2f} | {latency[i]:.3f} | {len(twins)} | {excess:+.2f}")

    shifted = [
        f"{d:.1f}: {scorer.score(F[front] + np.array([d, 0.0])):.3f}" for d in (0.1, 0.2, 0.3, 0.5)
    ]
    print(f"  true front lowered by d accuracy points, normalised HV: {', '.join(shifted)}")

    best = [
        max(by_function.values(), key=lambda rows: accuracy[rows].mean())
        for by_function in levels.values()
    ]
    rng = np.random.default_rng(seed)
    for copies in (1, 3):
        scores = []
        for _ in range(draws):
            picked = [rng.choice(rows, min(copies, len(rows)), replace=False) for rows in best]
            scores.append(scorer.score(F[np.concatenate(picked)]))
        evaluations = sum(min(copies, len(rows)) for rows in best)
        print(
            f"  oracle, best function per latency level, {copies} random cell(s) of it "
            f"({evaluations} evaluations): median normalised HV {np.median(scores):.3f} "
            f"(10th-90th percentile {np.quantile(scores, 0.1):.3f}-"
            f"{np.quantile(scores, 0.9):.3f})"
        )


def within_function_spread() -> None:
    scorer = Scorer(PROBLEMS[0])
    groups: dict[str, list[float]] = defaultdict(list)
    for spec, row in scorer.rows.items():
        groups[scorer.space.function_key(scorer.space.parse(spec))].append(-row[0])
    spreads = [np.std(a, ddof=1) for a in groups.values() if len(a) > 1 and np.mean(a) > 90]
    print(
        f"accuracy spread within a function (functions with >= 2 cells, mean accuracy > 90%, "
        f"{len(spreads)} of them): median std {np.median(spreads):.2f}, "
        f"mean std {np.mean(spreads):.2f} percentage points"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for problem in PROBLEMS:
        if problem.space == "nb201" and not problem.table.is_file():
            print(f"error: {problem.table} not found (see ../shared/data)", file=sys.stderr)
            return 2
    within_function_spread()
    for problem in PROBLEMS:
        if problem.space == "nb201":
            analyse(problem.name, args.draws, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
