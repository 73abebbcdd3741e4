"""Search quality and loop overhead on tabular benchmarks.

For each problem (NB201 accuracy x FPGA latency, NB201 accuracy x Eyeriss latency, NAS-Bench-Macro
accuracy x params) and each hwnas strategy that can search a table, runs ``hwnas.search`` with
20 seeds and reports the median normalised hypervolume after 100, 300 and 500 evaluations:
objectives scaled by the true front's ideal and nadir, reference point 1.1 per axis, divided by
the true front's hypervolume (1.0 = the whole true front found). pymoo's stock NSGA-II
(population 20, integer encoding with SBX and polynomial mutation plus rounding, as in pymoo's
documentation for discrete problems) runs side by side in the same script.

Also measures the loop overhead: tabular evaluations per second end to end (store writes
included) for random search on NB201.

    python benchmarks/tabular_search.py                      # everything, 20 seeds
    python benchmarks/tabular_search.py --seeds 3 --strategies random,nsga2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import hwnas
from hwnas.evaluate.table import TabularBenchmark
from hwnas.objectives.base import parse_objective
from hwnas.objectives.pareto import hypervolume, nondominated_mask, normalise
from hwnas.search import STRATEGIES
from hwnas.spaces import make_space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CHECKPOINTS = (100, 300, 500)
REFERENCE = 1.1
# Strategies that need a supernet and real training cannot search a table.
NOT_TABULAR = {"fbnet", "squeezenas", "darts", "snas"}


@dataclass(frozen=True)
class Problem:
    name: str
    space: str
    table: Path
    objectives: tuple[str, str]


PROBLEMS = (
    Problem(
        "nb201-fpga", "nb201", DATA / "nb201_cifar10_hw.csv", ("acc_cifar10:max", "lat_fpga_ms:min")
    ),
    Problem(
        "nb201-eyeriss",
        "nb201",
        DATA / "nb201_cifar10_hw.csv",
        ("acc_cifar10:max", "lat_eyeriss_ms:min"),
    ),
    Problem(
        "macro-params",
        "macro",
        DATA / "nas-bench-macro_cifar10.json",
        ("mean_acc:max", "params:min"),
    ),
)


class Scorer:
    """Normalised hypervolume of any prefix of a sequence of evaluations."""

    def __init__(self, problem: Problem) -> None:
        self.space = make_space(problem.space)
        self.table = TabularBenchmark(path=problem.table, space=self.space)
        self.objectives = [parse_objective(o) for o in problem.objectives]
        metrics = [o.metric for o in self.objectives]
        signs = np.array([o.sign for o in self.objectives])
        self.rows = {
            g.spec: signs * np.array([self.table.query(g, metrics)[m].value for m in metrics])
            for g in self.table.genotypes()
        }
        F = np.array(list(self.rows.values()))
        true_front = F[nondominated_mask(F)]
        self.ideal, self.nadir = true_front.min(axis=0), true_front.max(axis=0)
        self.true_hv = self._hv(true_front)

    def _hv(self, F: np.ndarray) -> float:
        return hypervolume(normalise(F, self.ideal, self.nadir), np.full(F.shape[1], REFERENCE))

    def score(self, F: np.ndarray) -> float:
        """Normalised hypervolume of objective rows (signed so that all are minimised)."""
        return self._hv(F) / self.true_hv

    def curve(self, specs: Sequence[str]) -> list[float]:
        F = np.array([self.rows[s] for s in specs])
        return [self.score(F[:n]) for n in CHECKPOINTS if n <= len(F)]


# Predictor quality (Kendall tau, accuracy / resource) logged by strategies that predict:
# (problem, strategy) -> one [tau_acc@100, tau_res@100, tau_acc@300, tau_res@300] per seed.
TAUS: dict[tuple[str, str], list[list[float]]] = {}


def _record_taus(problem: Problem, strategy: str, run_dir: Path) -> None:
    from hwnas.store import RunStore

    with RunStore.open(run_dir, read_only=True) as store:
        events = store.events("predictor_quality")
    if not events:
        return

    def last(n: int, key: str) -> float:
        values = [e[key] for e in events if e["evaluations"] <= n and e.get(key) is not None]
        return values[-1] if values else float("nan")

    row = [last(n, f"kendall_tau_{r}") for n in CHECKPOINTS[:2] for r in ("accuracy", "resource")]
    TAUS.setdefault((problem.name, strategy), []).append(row)


def run_hwnas(problem: Problem, strategy: str, seed: int, budget: int, workdir: Path) -> list[str]:
    result = hwnas.run_search(
        space=problem.space,
        strategy=strategy,
        objectives=list(problem.objectives),
        benchmark=problem.table,
        budget=budget,
        seed=seed,
        out=workdir / f"{problem.name}-{strategy}-{seed}",
    )
    _record_taus(problem, strategy, workdir / f"{problem.name}-{strategy}-{seed}")
    return [t.genotype.spec for t in result.trials if t.state.finished]


def run_stock_nsga2(scorer: Scorer, seed: int, budget: int) -> list[str]:
    """pymoo's NSGA-II as a user would set it up for an integer problem; every evaluation counts."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    space = scorer.space
    cards = np.array(space.cardinalities())
    evaluated: list[str] = []

    class TableProblem(PymooProblem):
        def __init__(self) -> None:
            super().__init__(n_var=len(cards), n_obj=2, xl=0, xu=cards - 1, vtype=int)

        def _evaluate(self, X: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
            specs = [
                space.from_indices(np.clip(np.round(x).astype(int), 0, cards - 1)).spec for x in X
            ]
            evaluated.extend(specs)
            out["F"] = np.array([scorer.rows[s] for s in specs])

    algorithm = NSGA2(
        pop_size=20,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    minimize(TableProblem(), algorithm, ("n_evals", budget), seed=seed, verbose=False)
    return evaluated[:budget]


def median_curves(
    runs: Callable[[int], list[str]], scorer: Scorer, seeds: int
) -> tuple[list[float], float]:
    curves, start = [], time.perf_counter()
    for seed in range(seeds):
        curves.append(scorer.curve(runs(seed)))
    return list(np.median(np.array(curves), axis=0)), (time.perf_counter() - start) / seeds


def throughput(workdir: Path, evaluations: int = 5000) -> dict[str, float]:
    problem = PROBLEMS[0]
    out = {}
    for strategy in ("random", "nsga2"):
        start = time.perf_counter()
        run_hwnas(problem, strategy, seed=0, budget=evaluations, workdir=workdir / "throughput")
        out[strategy] = evaluations / (time.perf_counter() - start)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--strategies", default=",".join(n for n in STRATEGIES.names() if n not in NOT_TABULAR)
    )
    parser.add_argument("--problems", default=",".join(p.name for p in PROBLEMS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    strategies = [s for s in args.strategies.split(",") if s]
    problems = [p for p in PROBLEMS if p.name in args.problems.split(",")]
    missing = [str(p.table) for p in problems if not p.table.is_file()]
    if missing:
        print(
            f"missing benchmark tables: {', '.join(missing)} (see ../shared/data/README.md)",
            file=sys.stderr,
        )
        return 2
    budget = max(CHECKPOINTS)
    results: dict[str, dict[str, dict[str, object]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rate = throughput(workdir)
        print(
            f"loop throughput on {PROBLEMS[0].name} (5000 evaluations, store included): "
            + ", ".join(f"{k} {v:,.0f} evaluations/s" for k, v in rate.items())
        )
        for problem in problems:
            scorer = Scorer(problem)
            results[problem.name] = {}
            rows = [
                (
                    "stock pymoo NSGA-II (pop 20)",
                    lambda seed, sc=scorer: run_stock_nsga2(sc, seed, budget),
                )
            ]
            rows += [
                (s, lambda seed, s=s, p=problem: run_hwnas(p, s, seed, budget, workdir))
                for s in strategies
            ]
            print(
                f"\n{problem.name}: {' x '.join(problem.objectives)}, median of {args.seeds} seeds"
            )
            print(
                f"| strategy | HV@{CHECKPOINTS[0]} | HV@{CHECKPOINTS[1]} | HV@{CHECKPOINTS[2]} | s per run |"
            )
            print("|---|---|---|---|---|")
            for label, runs in rows:
                curve, seconds = median_curves(runs, scorer, args.seeds)
                results[problem.name][label] = {"median_hv": curve, "seconds_per_run": seconds}
                print(
                    f"| {label} | " + " | ".join(f"{v:.3f}" for v in curve) + f" | {seconds:.2f} |",
                    flush=True,
                )
                taus = TAUS.get((problem.name, label))
                if taus:
                    acc100, res100, acc300, res300 = np.nanmedian(np.array(taus), axis=0)
                    results[problem.name][label]["kendall_tau"] = [acc100, res100, acc300, res300]
                    print(
                        f"|   {label} predictors, median Kendall tau (accuracy / resource) | "
                        f"{acc100:.2f} / {res100:.2f} | {acc300:.2f} / {res300:.2f} | | |",
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps({"throughput": rate, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
