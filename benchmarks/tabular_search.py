"""Search quality and loop overhead on tabular benchmarks, hwnas strategies beside their peers.

Problems: NB201 accuracy x FPGA latency and x Eyeriss latency, raw and noise-free, and
NAS-Bench-Macro accuracy x params. A noise-free NB201 problem gives every cell the mean
accuracy of the cells that compute the same function (``NB201Space.function_key``; the raw
table's top points are lucky training runs among such copies, see ``nb201_noise_ceiling.py``);
latency stays per cell.

Methods: every hwnas strategy that can search a table (by its registry name, so a newly
registered strategy needs no change here) and the peers a user could pick instead:
Optuna's TPE (``optuna-tpe-mv``: multivariate; ``optuna-tpe``: default), Optuna's NSGA-II
(``optuna-nsga2``) and pymoo's NSGA-II (``pymoo-nsga2``; population 20, integer encoding with
SBX and polynomial mutation plus rounding, as in pymoo's documentation for discrete problems).
Every method gets the same seeds and the same scoring, and only distinct architectures count as
evaluations (a repeated proposal costs nothing on a table). Reported: the median normalised
hypervolume after 50, 100 and 300 evaluations (objectives scaled by the true front's ideal and
nadir, reference point 1.1 per axis, divided by the true front's hypervolume: 1.0 = the whole
true front found) and the wall seconds per 300-evaluation run (hwnas: ``search`` end to end,
run directory and store included; peers: their ask/tell loop).

    python benchmarks/tabular_search.py                      # everything, 20 seeds
    python benchmarks/tabular_search.py --seeds 3 --methods random,nsga2,optuna-tpe-mv
    python benchmarks/tabular_search.py --problems nb201-fpga-nf --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.api import search
from hwnas.evaluate.table import TabularBenchmark
from hwnas.objectives.base import parse_objective
from hwnas.objectives.pareto import hypervolume, nondominated_mask, normalise
from hwnas.search import STRATEGIES, max_objectives
from hwnas.spaces import make_space
from hwnas.spaces.base import CategoricalSpace

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CHECKPOINTS = (50, 100, 300)
REFERENCE = 1.1
# Strategies that need a supernet and real training cannot search a table.
NOT_TABULAR = {"fbnet", "squeezenas", "darts", "snas", "enas"}
# A peer that keeps proposing architectures it has seen stops after this many proposals per
# evaluation; its later checkpoints are then nan. Only Optuna's default (univariate) TPE hits
# it: on NB201 x FPGA, seed 0, it had found 229 distinct cells after 3,000 proposals (278 s),
# where the multivariate TPE needs 361 proposals for 300.
MAX_PROPOSALS = 3


@dataclass(frozen=True)
class Problem:
    name: str
    space: str
    table: Path
    objectives: tuple[str, str]
    noise_free: bool = False  # accuracy = mean over the cells with the same function_key


_NB201 = DATA / "nb201_cifar10_hw.csv"
PROBLEMS = (
    Problem("nb201-fpga", "nb201", _NB201, ("acc_cifar10:max", "lat_fpga_ms:min")),
    Problem("nb201-eyeriss", "nb201", _NB201, ("acc_cifar10:max", "lat_eyeriss_ms:min")),
    Problem(
        "macro-params",
        "macro",
        DATA / "nas-bench-macro_cifar10.json",
        ("mean_acc:max", "params:min"),
    ),
)
NOISE_FREE_PROBLEMS = tuple(
    Problem(f"{p.name}-nf", p.space, p.table, p.objectives, noise_free=True)
    for p in PROBLEMS
    if p.space == "nb201"
)
ALL_PROBLEMS = PROBLEMS + NOISE_FREE_PROBLEMS


def write_noise_free_table(problem: Problem, out_dir: Path) -> Path:
    """A copy of the NB201 table whose accuracy columns hold their function class's mean."""
    space = make_space(problem.space)
    with problem.table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c.startswith("acc")]
    keys = [space.function_key(space.parse(r["arch_str"])) for r in rows]
    for column in columns:
        sums: dict[str, list[float]] = defaultdict(list)
        for key, row in zip(keys, rows):
            sums[key].append(float(row[column]))
        means = {key: float(np.mean(values)) for key, values in sums.items()}
        for key, row in zip(keys, rows):
            row[column] = repr(means[key])
    path = out_dir / f"{problem.table.stem}-noise-free.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


class Scorer:
    """Normalised hypervolume of any prefix of a sequence of evaluations."""

    def __init__(self, problem: Problem, table: Path | None = None) -> None:
        self.problem = problem
        self.table_path = table or problem.table
        self.space = make_space(problem.space)
        self.table = TabularBenchmark(path=self.table_path, space=self.space)
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
        """Scores after each checkpoint's number of distinct evaluations (nan if not reached)."""
        distinct = list(dict.fromkeys(specs))
        F = np.array([self.rows[s] for s in distinct])
        return [self.score(F[:n]) if n <= len(F) else float("nan") for n in CHECKPOINTS]


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

    row = [last(n, f"kendall_tau_{r}") for n in (100, 300) for r in ("accuracy", "resource")]
    TAUS.setdefault((problem.name, strategy), []).append(row)


def run_hwnas(scorer: Scorer, strategy: str, seed: int, budget: int, workdir: Path) -> list[str]:
    problem = scorer.problem
    out = workdir / f"{problem.name}-{strategy}-{seed}"
    result = search(
        space=problem.space,
        strategy=strategy,
        objectives=list(problem.objectives),
        benchmark=scorer.table_path,
        budget=budget,
        seed=seed,
        out=out,
    )
    _record_taus(problem, strategy, out)
    return [t.genotype.spec for t in result.trials if t.state.finished]


class _Distinct:
    """Looks architectures up in the table and records the distinct ones in order."""

    def __init__(self, scorer: Scorer, budget: int) -> None:
        self.scorer, self.budget = scorer, budget
        self.order: list[str] = []
        self._seen: set[str] = set()
        self.proposals = 0

    def __call__(self, spec: str) -> np.ndarray:
        self.proposals += 1
        if spec not in self._seen:
            self._seen.add(spec)
            self.order.append(spec)
        return self.scorer.rows[spec]

    @property
    def done(self) -> bool:
        return len(self.order) >= self.budget or self.proposals >= MAX_PROPOSALS * self.budget


def _optuna(sampler_name: str) -> Callable[[Scorer, int, int], list[str]]:
    def run(scorer: Scorer, seed: int, budget: int) -> list[str]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        samplers = {
            "tpe-mv": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True),
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        }
        space = scorer.space
        assert isinstance(space, CategoricalSpace)
        options = [list(o) for o in space.options()]
        study = optuna.create_study(
            directions=["minimize"] * len(scorer.objectives), sampler=samplers[sampler_name]()
        )
        lookup = _Distinct(scorer, budget)
        while not lookup.done:
            trial = study.ask()
            choices = [trial.suggest_categorical(f"x{i}", o) for i, o in enumerate(options)]
            study.tell(trial, lookup(space.to_spec(choices)).tolist())
        return lookup.order[:budget]

    return run


def run_pymoo_nsga2(scorer: Scorer, seed: int, budget: int) -> list[str]:
    """pymoo's NSGA-II as a user would set it up for an integer problem."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.core.termination import NoTermination
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    space = scorer.space
    cards = np.array(space.cardinalities())
    lookup = _Distinct(scorer, budget)
    problem = PymooProblem(n_var=len(cards), n_obj=2, xl=0, xu=cards - 1, vtype=int)
    algorithm = NSGA2(
        pop_size=20,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, termination=NoTermination(), seed=seed)
    while not lookup.done:
        pop = algorithm.ask()
        X = np.clip(np.round(pop.get("X").astype(float)).astype(int), 0, cards - 1)
        pop.set("F", np.array([lookup(space.from_indices(x).spec) for x in X]))
        algorithm.tell(infills=pop)
    return lookup.order[:budget]


PEERS: dict[str, Callable[[Scorer, int, int], list[str]]] = {
    "optuna-tpe-mv": _optuna("tpe-mv"),
    "optuna-tpe": _optuna("tpe"),
    "optuna-nsga2": _optuna("nsga2"),
    "pymoo-nsga2": run_pymoo_nsga2,
}


def tabular_strategies() -> list[str]:
    """Registered strategies that search a table for a front (two objectives here): not the
    supernets, not the single-objective ones (hillclimb)."""
    return [n for n in STRATEGIES.names() if n not in NOT_TABULAR and (max_objectives(n) or 2) >= 2]


def runner_for(method: str, budget: int, workdir: Path) -> Callable[[Scorer, int], list[str]]:
    if method in PEERS:
        peer = PEERS[method]
        return lambda scorer, seed: peer(scorer, seed, budget)
    return lambda scorer, seed: run_hwnas(scorer, method, seed, budget, workdir)


def measure(
    runs: Callable[[Scorer, int], list[str]], scorer: Scorer, seeds: Sequence[int]
) -> tuple[list[list[float]], list[float]]:
    """Each seed's curve and wall seconds."""
    curves, seconds = [], []
    for seed in seeds:
        start = time.perf_counter()
        specs = runs(scorer, seed)
        seconds.append(time.perf_counter() - start)
        curves.append(scorer.curve(specs))
    return curves, seconds


def throughput(workdir: Path, evaluations: int = 5000) -> dict[str, float]:
    scorer = Scorer(PROBLEMS[0])
    out = {}
    for strategy in ("random", "nsga2"):
        start = time.perf_counter()
        run_hwnas(scorer, strategy, seed=0, budget=evaluations, workdir=workdir / "throughput")
        out[strategy] = evaluations / (time.perf_counter() - start)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--methods",
        "--strategies",
        default=",".join(tabular_strategies() + list(PEERS)),
        help=f"comma-separated hwnas strategies (registry names) and peers ({', '.join(PEERS)})",
    )
    parser.add_argument("--problems", default=",".join(p.name for p in ALL_PROBLEMS))
    parser.add_argument("--json", type=Path, help="also write every seed's results here")
    parser.add_argument(
        "--throughput", action="store_true", help="also measure loop evaluations per second"
    )
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in PEERS and m not in tabular_strategies()]
    if unknown:
        print(
            f"unknown methods {', '.join(unknown)}: use hwnas strategies "
            f"({', '.join(tabular_strategies())}) or peers ({', '.join(PEERS)})",
            file=sys.stderr,
        )
        return 2
    if any(m.startswith("optuna") for m in methods):
        try:
            import optuna  # noqa: F401
        except ModuleNotFoundError:
            print("the Optuna peers need optuna: pip install -e '.[bench]'", file=sys.stderr)
            return 2
    names = args.problems.split(",")
    problems = [p for p in ALL_PROBLEMS if p.name in names]
    if len(problems) != len(set(names)):
        known = ", ".join(p.name for p in ALL_PROBLEMS)
        print(f"unknown problems in '{args.problems}': use {known}", file=sys.stderr)
        return 2
    missing = sorted({str(p.table) for p in problems if not p.table.is_file()})
    if missing:
        print(
            f"missing benchmark tables: {', '.join(missing)} (see ../shared/data/README.md)",
            file=sys.stderr,
        )
        return 2
    budget = max(CHECKPOINTS)
    seeds = list(range(args.seeds))
    results: dict[str, dict[str, dict[str, object]]] = {}
    rate: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.throughput:
            rate = throughput(workdir)
            print(
                f"loop throughput on {PROBLEMS[0].name} (5000 evaluations, store included): "
                + ", ".join(f"{k} {v:,.0f} evaluations/s" for k, v in rate.items())
            )
        for problem in problems:
            table = write_noise_free_table(problem, workdir) if problem.noise_free else None
            scorer = Scorer(problem, table)
            results[problem.name] = {}
            print(
                f"\n{problem.name}: {' x '.join(problem.objectives)}"
                f"{' (noise-free)' if problem.noise_free else ''}, median of {args.seeds} seeds"
            )
            print("| method | " + " | ".join(f"HV@{n}" for n in CHECKPOINTS) + " | s per run |")
            print("|---" * (len(CHECKPOINTS) + 2) + "|")
            for method in methods:
                curves, seconds = measure(runner_for(method, budget, workdir), scorer, seeds)
                median = np.median(np.array(curves), axis=0).tolist()
                results[problem.name][method] = {
                    "median_hv": median,
                    "median_seconds": float(np.median(seconds)),
                    "curves": curves,
                    "seconds": seconds,
                }
                print(
                    f"| {method} | "
                    + " | ".join(f"{v:.3f}" for v in median)
                    + f" | {np.median(seconds):.2f} |",
                    flush=True,
                )
                taus = TAUS.get((problem.name, method))
                if taus:
                    acc100, res100, acc300, res300 = np.nanmedian(np.array(taus), axis=0)
                    results[problem.name][method]["kendall_tau"] = [acc100, res100, acc300, res300]
                    print(
                        f"|   {method} predictors, median Kendall tau @100 / @300 (accuracy, "
                        f"resource) | {acc100:.2f}, {res100:.2f} | {acc300:.2f}, {res300:.2f} "
                        "| | |",
                        flush=True,
                    )
                if args.json:
                    args.json.write_text(
                        json.dumps({"throughput": rate, "results": results}, indent=1)
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
