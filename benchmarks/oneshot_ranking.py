"""Can a supernet's ranking of architectures be trusted? One-shot against stand-alone, on digits.

For each space (``nb201`` cells and ``mobilenet`` layers, both small enough for a CPU):

1. sample ``--archs`` architectures (seeded) and train each alone on digits
   (``--standalone-epochs``), recording its validation accuracy;
2. for each weight-sharing method (``darts``: softmax relaxation, all paths; ``snas`` and
   ``fbnet``: Gumbel-softmax, all paths; ``single-path``: one sampled path per step, GDAS's
   straight-through form) train one supernet (``--supernet-epochs``, one accuracy-only head:
   lambda = beta = 0) and read each sampled architecture's one-shot accuracy (its path with
   the shared weights, batch norm on batch statistics, on the held-out architecture part of
   the training data); ``enas`` trains ENAS's shared-weight network the way the ``enas``
   strategy does (one path per weight step, drawn by the LSTM controller, which learns from
   the one-shot accuracy alone here) and scores the same paths on the same batches with its
   own evaluation (:meth:`ENASTrainer.accuracies`: batch statistics, no dropout);
   ``reseed`` trains the same architectures alone once more with another seed: how well two
   stand-alone runs agree measures the noise of the target itself (a perfect predictor of
   the expected stand-alone accuracy would agree with one run somewhat better than two runs
   agree with each other, not much better);
3. report Kendall's tau-b with its jackknife standard error (and the standard error of a tau
   of zero, i.e. of chance, for comparison), the top-5 overlap of the one-shot against the
   stand-alone accuracies, and the wall time of each part.

The JSON report is rewritten after every row, so an interrupted run keeps what it measured.

    OMP_NUM_THREADS=1 python benchmarks/oneshot_ranking.py                 # 30 archs per space
    OMP_NUM_THREADS=1 python benchmarks/oneshot_ranking.py --archs 12 --json out.json
    OMP_NUM_THREADS=1 python benchmarks/oneshot_ranking.py --smoke         # does it run?
    # the same one-shot scores against longer stand-alone training of the same architectures:
    OMP_NUM_THREADS=1 python benchmarks/oneshot_ranking.py --standalone-epochs 6 \
        --methods reseed --json long.json
    python benchmarks/oneshot_ranking.py --table out.json --against long.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import numpy as np
import torch

SPACES = {
    "nb201": {"channels": 8, "cells_per_stage": 1},
    "mobilenet": {"stages": [[16, 1, 1], [24, 2, 2], [32, 2, 1]], "head_channels": 64},
}
SMOKE = {
    "nb201": {"channels": 4, "cells_per_stage": 1},
    "mobilenet": {"stages": [[8, 1, 1], [16, 2, 1]], "head_channels": 32},
}
#: method -> (relaxation, paths, loss)
METHODS = {
    "darts": ("softmax", "full", "penalty"),
    "snas": ("gumbel", "full", "snas"),
    "fbnet": ("gumbel", "full", "fbnet"),
    "single-path": ("gumbel", "one", "penalty"),  # one sampled path per step (GDAS)
    "enas": ("", "one", "enas"),  # ENAS: one controller-drawn path per step
    # Not a supernet: the same architectures trained alone again with another seed, to
    # measure how noisy the stand-alone target is (see the module docstring).
    "reseed": ("", "", "reseed"),
}
#: one-shot evaluation batches (of 32) per architecture, the same for every method
EVAL_BATCHES = 8


def sample_archs(space: Any, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    seen: dict[str, Any] = {}
    while len(seen) < min(n, space.size() or n):
        g = space.sample(rng)
        seen.setdefault(g.key(), g)
    return list(seen.values())


def standalone(space: Any, archs: list[Any], data: Any, epochs: float, seed: int) -> list[float]:
    from hwnas.training.settings import TrainSettings
    from hwnas.training.trainer import train

    settings = TrainSettings(epochs=epochs, batch_size=32, lr=0.05)
    out = []
    for g in archs:
        torch.manual_seed(seed)
        model = space.build(g, num_classes=data.num_classes, in_channels=data.input_shape[0])
        out.append(float(train(model, data, settings, device="cpu", seed=seed).accuracy))
    return out


def oneshot(space: Any, archs: list[Any], data: Any, method: str, epochs: int, seed: int):
    from hwnas.search.supernet.costs import CostSet, counted_terms
    from hwnas.search.supernet.losses import FBNetLoss, PenaltyLoss, SNASLoss
    from hwnas.search.supernet.ranking import oneshot_accuracies
    from hwnas.search.supernet.tasks import ClassificationTask
    from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer
    from hwnas.spaces.nb201 import NB201Space
    from hwnas.training.settings import TrainSettings

    relaxation, paths, loss = METHODS[method]
    train_settings = TrainSettings(batch_size=32, lr=0.05)
    if method == "enas":
        return enas_oneshot(space, archs, data, train_settings, epochs, seed)
    if isinstance(space, NB201Space):
        from hwnas.search.supernet.cells import CellClassificationTask, cell_counted_terms

        task: Any = CellClassificationTask(space=space, data=data, settings=train_settings)
        terms = cell_counted_terms(
            space, ["params"], num_classes=data.num_classes, input_shape=data.input_shape
        )
    else:
        task = ClassificationTask(space=space, data=data, settings=train_settings)
        terms = counted_terms(task, ["params"])
    head = {"penalty": PenaltyLoss(0.0), "snas": SNASLoss(0.0), "fbnet": FBNetLoss(0.2, 0.0)}
    settings = SupernetSettings(
        epochs=epochs, warmup_epochs=max(0, epochs // 4), relaxation=relaxation, paths=paths,
        theta_lr=0.05, lr=0.05, seed=seed,
    )  # fmt: skip
    trainer = SupernetTrainer(
        task=task, costs=CostSet(terms), heads=[head[loss]], settings=settings
    )
    started = time.perf_counter()
    trainer.train()
    scores = oneshot_accuracies(trainer, archs, batches=EVAL_BATCHES, seed=seed)
    return scores, time.perf_counter() - started


def enas_oneshot(space: Any, archs: list[Any], data: Any, train_settings: Any, epochs: int,
                 seed: int) -> tuple[list[float], float]:  # fmt: skip
    """ENAS's shared weights trained with an accuracy-only controller reward (the other
    methods' heads are accuracy-only too), then each architecture scored by ENAS itself."""
    from hwnas.objectives.base import parse_objective
    from hwnas.search.rl.lstm import LSTMController
    from hwnas.search.rl.reward import RewardEngine, default_preferences
    from hwnas.search.supernet.enas_trainer import ENASSettings, ENASTrainer
    from hwnas.search.supernet.tasks import ClassificationTask
    from hwnas.search.supernet.trainer import SupernetSettings

    task = ClassificationTask(space=space, data=data, settings=train_settings)
    objectives = [parse_objective("error")]
    engine = RewardEngine(kind="tchebycheff", objectives=objectives)
    prefs = default_preferences(1)
    controller = LSTMController(cards=[len(o) for o in space.options()], objectives=1, seed=seed)

    def score(rows_archs: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (100.0 - accuracy)[:, None], np.zeros(len(accuracy))

    settings = SupernetSettings(
        epochs=epochs, warmup_epochs=max(0, epochs // 4), lr=0.05, seed=seed
    )
    trainer = ENASTrainer(
        task=task, space=space, controller=controller, engine=engine, preferences=prefs,
        score=score, settings=settings, enas=ENASSettings(),
    )  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    # The same batches as the other methods' oneshot_accuracies (same part, seed and count).
    stream = task.batches(trainer.arch_part, seed=seed, device=trainer.device)
    batches = [
        next(stream) for _ in range(max(1, min(EVAL_BATCHES, task.steps(trainer.arch_part))))
    ]
    indices = np.array([space.to_indices(g) for g in archs])
    scores = [float(a) for a in trainer.accuracies(indices, batches)]
    return scores, time.perf_counter() - started


def top_pick(scores: list[float], alone: list[float], k: int = 5) -> dict[str, Any]:
    """What a user who trains the method's top k would get: the best stand-alone accuracy
    among them and its rank among all (1 = the best architecture of the sample)."""
    picked = np.argsort(-np.asarray(scores), kind="stable")[:k]
    best = float(max(alone[i] for i in picked))
    return {"top_k_best": round(best, 2), "top_k_best_rank": 1 + sum(a > best for a in alone)}


def reused(args: Any, space: str, archs: list[Any]) -> tuple[list[float], float] | None:
    """The stand-alone accuracies and seconds of ``archs`` from ``--reuse``, if it has them."""
    if not args.reuse:
        return None
    with open(args.reuse) as f:
        report = json.load(f)
    same = report["args"]["standalone_epochs"] == args.standalone_epochs
    for row in report["results"]:
        if same and row["space"] == space and row["archs"] == [g.spec for g in archs]:
            return row["standalone"], row["standalone_s"]
    raise SystemExit(f"{args.reuse} has no stand-alone results of these {space} architectures")


def table(paths: list[str], against: str | None = None) -> None:
    """The docs table (markdown) from JSON reports of this script; with ``against``, the
    one-shot scores are compared with that report's stand-alone accuracies of the same
    architectures instead (e.g. longer stand-alone training: the supernets do not change)."""
    from hwnas.objectives.ranking import ranking_summary

    targets: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    if against:
        with open(against) as f:
            for row in json.load(f)["results"]:
                targets[(row["space"], tuple(row["archs"]))] = row["standalone"]
    print("| space | method | Kendall tau ± SE | top-5 overlap | best of its top 5 (rank) "
          "| supernet (s) |\n| --- | --- | --- | --- | --- | --- |")  # fmt: skip
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        for row in report["results"]:
            alone = row["standalone"]
            if against:
                alone = targets[(row["space"], tuple(row["archs"]))]
            if against and row["method"] == "reseed":
                continue  # another seed's training is not comparable with the longer one
            summary = ranking_summary(row["oneshot"], alone)
            pick = top_pick(row["oneshot"], alone)
            print(f"| {row['space']} | {row['method']} | {summary['kendall_tau']:.2f} ± "
                  f"{summary['tau_se']:.2f} | {summary['top_k_overlap']:.1f} | "
                  f"{pick['top_k_best']:.1f}% ({pick['top_k_best_rank']}) | "
                  f"{row['supernet_s']:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--standalone-epochs", type=float, default=3.0)
    parser.add_argument("--supernet-epochs", type=int, default=6)
    parser.add_argument("--spaces", nargs="+", default=list(SPACES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--table", nargs="+", metavar="JSON", help="print the docs table")
    parser.add_argument("--against", metavar="JSON", help="with --table: other stand-alone results")
    parser.add_argument(
        "--reuse", metavar="JSON", help="take the stand-alone accuracies from an earlier report "
        "of the same architectures (same space, --archs, --seed, --standalone-epochs)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.table:
        table(args.table, args.against)
        return
    torch.set_num_threads(1)
    if args.smoke:
        args.archs, args.standalone_epochs, args.supernet_epochs = 4, 0.2, 1

    from hwnas.objectives.ranking import chance_standard_error, ranking_summary
    from hwnas.spaces import make_space
    from hwnas.training.datasets.catalog import load_dataset

    data = load_dataset("digits", seed=args.seed)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "args": vars(args),
        "results": [],
    }
    for name in args.spaces:
        space = make_space(name, (SMOKE if args.smoke else SPACES)[name])
        archs = sample_archs(space, args.archs, args.seed)
        earlier = reused(args, name, archs)
        started = time.perf_counter()
        if earlier is not None:
            alone, alone_s = earlier
        else:
            alone = standalone(space, archs, data, args.standalone_epochs, args.seed)
            alone_s = time.perf_counter() - started
        print(f"{name}: {len(archs)} archs trained alone in {alone_s:.0f} s"
              f"{' (earlier, --reuse)' if earlier else ''}; "
              f"accuracy {min(alone):.1f}..{max(alone):.1f}%", flush=True)  # fmt: skip
        for method in args.methods:
            if method == "reseed":
                began = time.perf_counter()
                scores = standalone(space, archs, data, args.standalone_epochs, args.seed + 1)
                seconds = time.perf_counter() - began
            else:
                scores, seconds = oneshot(
                    space, archs, data, method, args.supernet_epochs, args.seed
                )
            row = {
                "space": name, "method": method, **ranking_summary(scores, alone),
                "chance_se": round(chance_standard_error(len(archs)), 4),
                **top_pick(scores, alone),
                "supernet_s": round(seconds, 1), "standalone_s": round(alone_s, 1),
                "oneshot": [round(s, 2) for s in scores], "standalone": [round(a, 2) for a in alone],
                "archs": [g.spec for g in archs],
            }  # fmt: skip
            report["results"].append(row)
            print(f"  {method:12s} tau {row['kendall_tau']} +- {row['tau_se']}  top-5 overlap "
                  f"{row['top_k_overlap']}  supernet {seconds:.0f} s", flush=True)  # fmt: skip
            if args.json:  # after every row: an interrupted run keeps what it measured
                with open(args.json, "w") as f:
                    json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
