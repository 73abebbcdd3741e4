"""Every strategy and Optuna's TPE with real training: digits, ``mobilenet``, error x latency x params.

The tables are a proxy; this is the comparison with training. Every method searches the same
reduced ``mobilenet`` space on scikit-learn's digits (1x16x16, CPU) for the same number of
trained candidates (``--budget``, 40), with the same seeds and training settings. Latency is the
``cpu`` device's lookup table (built once, before any run, so every method sees the same
values and no run times the machine while others train). Reported per method: the median over
seeds of the normalised hypervolume of each run's front of (validation error, latency, params),
all runs of a seed scaled together (the ideal and nadir of every point of every method with
that seed, reference point 1.1 per axis), the front size, and the wall seconds per run.

Peers: Optuna's ``TPESampler(multivariate=True)`` over the space's per-layer choices
(``optuna-tpe-mv``), run through hwnas's own loop as a strategy, so that it trains exactly what
hwnas strategies train. A repeated proposal is answered with its earlier result and does not
count as a candidate.

    python benchmarks/search_digits.py                                   # everything, 3 seeds
    python benchmarks/search_digits.py --methods bo,random --seeds 1 --budget 12
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from supernet_cost import build_lut

from hwnas.objectives.pareto import hypervolume, nondominated_mask, normalise
from hwnas.search import STRATEGIES
from hwnas.search.base import Strategy
from hwnas.spaces.base import CategoricalSpace
from hwnas.types import Candidate, Trial, TrialState

SPACE = {"stages": [[16, 1, 1], [24, 2, 2], [32, 2, 1]], "head_channels": 64}
OBJECTIVES = ["error", "latency", "params"]
REFERENCE = 1.1
PEERS = ("optuna-tpe-mv",)
# Supernet strategies spend their budget on a supernet and hand off candidates: they run too,
# with the same number of trained candidates.
DEFAULT_METHODS = "bo,lemonade,rl,nsga2,random,hillclimb,fbnet,darts,snas,enas,optuna-tpe-mv"


def strategy_options(method: str, budget: int) -> dict[str, Any]:
    """Supernet strategies hand off ``heads x samples_per_head`` candidates (ENAS:
    ``candidates``); ask for as many as the others train."""
    if method == "enas":
        return {"candidates": budget}
    if method in ("fbnet", "darts", "snas", "squeezenas"):
        return {"samples_per_head": -(-budget // 5)}  # five heads by default
    return {}


class OptunaTPE(Strategy):
    """Optuna's multivariate TPE behind hwnas's ask/tell, over per-layer choice indices."""

    name = "optuna-tpe-mv"
    batch_size = 1

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(
            directions=["minimize"] * len(self.objectives),
            sampler=optuna.samplers.TPESampler(seed=int(self.seed), multivariate=True),
        )
        self._asked: dict[str, Any] = {}  # genotype key -> the Optuna trial waiting for it
        self._results: dict[str, list[float] | None] = {}  # key -> signed objectives

    def ask(self, n: int) -> list[Candidate]:
        space = self.space
        assert isinstance(space, CategoricalSpace)
        out: list[Candidate] = []
        for _ in range(50 * n):  # repeated proposals are answered from earlier results
            if len(out) >= n:
                break
            trial = self._study.ask()
            index = [
                trial.suggest_categorical(f"x{i}", list(range(c)))
                for i, c in enumerate(space.cardinalities())
            ]
            genotype = space.from_indices(np.array(index))
            key = genotype.key()
            if key in self._results or key in self._asked:
                self._answer(trial, self._results.get(key))
                continue
            self._asked[key] = trial
            out.append(Candidate(genotype))
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for trial in trials:
            key = trial.genotype.key()
            row = self.objective_row(trial)
            ok = trial.state is TrialState.COMPLETE and bool(np.isfinite(row).all())
            self._results[key] = row.tolist() if ok else None
            waiting = self._asked.pop(key, None)
            if waiting is not None:
                self._answer(waiting, self._results[key])

    def _answer(self, trial: Any, row: list[float] | None) -> None:
        import optuna

        if row is None:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(trial, row)


def run(method: str, seed: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    import hwnas

    start = time.perf_counter()
    result = hwnas.run_search(
        space="mobilenet",
        strategy=method,
        dataset="digits",
        device="cpu",
        objectives=OBJECTIVES,
        budget=args.budget,
        seed=seed,
        out=root / f"{method}-{seed}",
        space_options=SPACE,
        training={"epochs": args.epochs, "batch_size": 32, "train_device": "cpu"},
        profiling={"latency": "lut"},
        strategy_options=strategy_options(method, args.budget),
    )
    seconds = time.perf_counter() - start
    done = [t for t in result.trials if t.state is TrialState.COMPLETE]
    rows = [[t.value("error"), t.value("latency"), t.value("params")] for t in done]
    return {"rows": rows, "seconds": seconds, "trained": len(done)}


def scaled_hv(rows: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> float:
    front = rows[nondominated_mask(rows)]
    box = np.full(rows.shape[1], REFERENCE)
    return hypervolume(normalise(front, ideal, nadir), box) / float(np.prod(box))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=40, help="trained candidates per run")
    parser.add_argument("--epochs", type=float, default=1.0, help="training epochs each")
    parser.add_argument("--json", type=Path, help="also write every run's rows here")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="runs of an earlier --json (same settings) to score with these, not rerun",
    )
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in PEERS and m not in STRATEGIES]
    if unknown:
        print(f"unknown methods: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if "optuna-tpe-mv" in methods and "optuna-tpe-mv" not in STRATEGIES:
        STRATEGIES.add("optuna-tpe-mv", f"{__name__}:OptunaTPE", "Optuna TPE (benchmark peer)")
    build_lut(SPACE)  # the supernet cost benchmark's: the cpu profile's table, once
    runs: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in methods}
    if args.reuse:
        earlier = json.loads(args.reuse.read_text())
        for method, by_seed in earlier.items():
            runs[method] = {int(seed): out for seed, out in by_seed.items()}
        methods += [m for m in earlier if m not in methods]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for method in methods:
                if seed in runs[method]:
                    continue
                runs[method][seed] = out = run(method, seed, args, Path(tmp))
                print(
                    f"seed {seed} {method}: {out['trained']} trained, {out['seconds']:.0f} s",
                    flush=True,
                )
                if args.json:
                    args.json.write_text(json.dumps(runs, indent=1))
    print(
        f"\ndigits, mobilenet {SPACE}, {' x '.join(OBJECTIVES)}, {args.budget} candidates, "
        f"{args.epochs:g} epochs each, median of {args.seeds} seeds"
    )
    print("| method | HV (scaled per seed) | front | trained | s per run |")
    print("|---|---|---|---|---|")
    for method in methods:
        hvs, fronts, trained, seconds = [], [], [], []
        for seed in range(args.seeds):
            every = np.array([r for m in methods for r in runs[m][seed]["rows"]], dtype=float)
            F = every[nondominated_mask(every)]
            ideal, nadir = F.min(axis=0), every.max(axis=0)
            rows = np.array(runs[method][seed]["rows"], dtype=float).reshape(-1, 3)
            hvs.append(scaled_hv(rows, ideal, nadir) if len(rows) else 0.0)
            fronts.append(int(nondominated_mask(rows).sum()) if len(rows) else 0)
            trained.append(runs[method][seed]["trained"])
            seconds.append(runs[method][seed]["seconds"])
        print(
            f"| {method} | {np.median(hvs):.3f} ({', '.join(f'{h:.3f}' for h in hvs)}) | "
            f"{np.median(fronts):.0f} | {np.median(trained):.0f} | {np.median(seconds):.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
