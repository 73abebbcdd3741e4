"""LEMONADE against random search on digits (error x params), same wall-clock budget each.

Both search the ``chain`` space on scikit-learn's digits (16x16, CPU): random search trains
every sampled network from scratch for ``--epochs``; LEMONADE trains its initial population
the same way, then children inherit their parent's weights through network morphisms and
train for ``--child-epochs``. The hypervolume of each run's front of (validation error,
parameters) is normalised by the ideal and nadir of all points of all runs of a seed
(reference point 1.1 per axis) and reported at quarters of the time budget.

    python benchmarks/lemonade_digits.py                     # 240 s per run, seed 0
    python benchmarks/lemonade_digits.py --time 120 --seeds 2 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

import hwnas
from hwnas.objectives.pareto import nondominated_mask, normalised_hypervolume
from hwnas.types import TrialState

SPACE_OPTIONS = {"resolution": 16, "in_channels": 1}


def run(strategy: str, seed: int, seconds: float, args: argparse.Namespace, root: Path):
    options = {}
    if strategy == "lemonade":
        options = {"initial_population": 8, "epochs_per_child": args.child_epochs}
    return hwnas.run_search(
        space="chain",
        strategy=strategy,
        dataset="digits",
        objectives=["error", "params"],
        time_budget=seconds,
        out=root / f"{strategy}-{seed}",
        seed=seed,
        space_options=SPACE_OPTIONS,
        strategy_options=options,
        training={"epochs": args.epochs, "batch_size": 32, "train_device": "cpu"},
    )


def points(result) -> tuple[np.ndarray, np.ndarray]:
    """(objective rows, finish times in s from the run's first start) of complete trials."""
    done = [t for t in result.trials if t.state is TrialState.COMPLETE]
    start = min(t.started for t in result.trials if t.started is not None)
    F = np.array([[t.value("error"), t.value("params")] for t in done])
    return F, np.array([t.finished - start for t in done])


def hv_at(F: np.ndarray, times: np.ndarray, t: float, lo: np.ndarray, hi: np.ndarray) -> float:
    seen = F[times <= t]
    if not len(seen):
        return 0.0
    return normalised_hypervolume(seen[nondominated_mask(seen)], lo, hi)


def depth(result) -> float:
    return statistics.mean(len(t.genotype.spec.split("-")) for t in result.front.members)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=float, default=240.0, help="seconds per run")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=4.0, help="epochs from scratch")
    parser.add_argument("--child-epochs", type=float, default=2.0, help="LEMONADE's children")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    quarters = [args.time * q for q in (0.25, 0.5, 0.75, 1.0)]
    print(f"digits, chain space, error x params, {args.time:g} s per run")
    print("| seed | strategy | trials | front | mean front depth | " + " | ".join(
        f"HV@{q:g}s" for q in quarters) + " |")  # fmt: skip
    print("|---" * (5 + len(quarters)) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            results = {s: run(s, seed, args.time, args, Path(tmp)) for s in ("lemonade", "random")}
            data = {s: points(r) for s, r in results.items()}
            every = np.vstack([F for F, _ in data.values()])
            lo, hi = every.min(axis=0), every.max(axis=0)
            for name, result in results.items():
                F, times = data[name]
                hvs = " | ".join(f"{hv_at(F, times, q, lo, hi):.3f}" for q in quarters)
                print(
                    f"| {seed} | {name} | {len(F)} | {len(result.front.members)} | "
                    f"{depth(result):.1f} | {hvs} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
