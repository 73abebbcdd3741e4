"""Fronts of darts, snas and fbnet on the nb201 cell space on digits (issue 17, item 3).

Each strategy runs one real search (error x latency measured on the `cpu` device x params),
its candidates trained from scratch (the default) or fine-tuned from the supernet
(``--finetune``), the other supernet options the defaults unless ``--options``; the front is the run's
own (non-dominated trials). Prints one JSON line per run: front size, wall and supernet
seconds (training; ``search_s``: cost terms, training and hand-off), the in-run ranking tau,
the candidates' cost spread and errors; with ``--knee-ratio`` also the front's knee trained
alone for the supernet's epochs with the run's batch size, in the same process, and the
search's seconds over that (issue 17's cost target: at most 3x).

    OMP_NUM_THREADS=1 python benchmarks/cell_fronts.py --budget 10 --epochs 3 --seed 0
    OMP_NUM_THREADS=1 python benchmarks/cell_fronts.py --finetune --epochs 2 \
        --options '{"paths": "full", "theta_heads": "all"}'   # the published supernet settings
    OMP_NUM_THREADS=1 python benchmarks/cell_fronts.py --handoff pareto   # the earlier hand-off
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def run(strategy: str, args: argparse.Namespace, out: Path) -> dict:
    import hwnas

    options = {
        "epochs": args.supernet_epochs, "warmup_epochs": 1, "theta_lr": args.theta_lr,
        "handoff": args.handoff, "finetune": args.finetune, **json.loads(args.options),
    }  # fmt: skip
    started = time.perf_counter()
    result = hwnas.run_search(
        space="nb201", space_options={"channels": args.channels, "cells_per_stage": 1},
        strategy=strategy, dataset="digits", device="cpu",
        objectives=["error", "latency", "params"], budget=args.budget,
        training={"epochs": args.epochs, "batch_size": 64, "train_device": "cpu"},
        strategy_options=options, seed=args.seed, out=out,
    )  # fmt: skip
    wall = time.perf_counter() - started
    events = {e["kind"]: e for e in hwnas.results.read_run(out).events}
    knee = knee_seconds(result, args) if args.knee_ratio else None
    trials = sorted(result.trials, key=lambda t: t.value("params"))
    ranking = events.get("supernet_ranking", {})
    return {
        "strategy": strategy, "handoff": args.handoff, "seed": args.seed,
        "finetune": args.finetune, "channels": args.channels, "epochs": args.epochs,
        "front": len(result.front.members), "trials": len(trials), "wall_s": round(wall, 1),
        "supernet_s": round(events["supernet_front"]["train_seconds"], 1),
        "search_s": round(events["supernet_front"]["search_seconds"], 1),
        **({} if knee is None else {
            "knee": knee[0], "knee_train_s": round(knee[1], 1),
            "search_vs_knee": round(events["supernet_front"]["search_seconds"] / knee[1], 2),
        }),
        "tau": ranking.get("kendall_tau"),
        "errors": [round(t.value("error"), 2) for t in trials],
        "params": [int(t.value("params")) for t in trials],
        "latency_ms": [round(t.value("latency"), 4) for t in trials],
        "on_front": [t in result.front.members for t in trials],
    }  # fmt: skip


def knee_seconds(result, args: argparse.Namespace) -> tuple[str, float]:
    """The front's knee trained alone, in this process, for the supernet's epochs with the
    run's batch size: what the supernet search is measured against."""
    from hwnas.spaces import make_space
    from hwnas.training.datasets.catalog import load_dataset
    from hwnas.training.settings import TrainSettings
    from hwnas.training.trainer import train

    knee = result.front.knee or result.front.members[0]
    space = make_space("nb201", {"channels": args.channels, "cells_per_stage": 1})
    model = space.build(knee.genotype, num_classes=10, in_channels=1)
    settings = TrainSettings(epochs=args.supernet_epochs, batch_size=64)
    done = train(model, load_dataset("digits", seed=args.seed), settings, device="cpu", seed=0)
    return knee.genotype.spec, done.train_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", nargs="+", default=["darts", "snas", "fbnet"])
    parser.add_argument("--budget", type=int, default=12)
    parser.add_argument("--epochs", type=float, default=2, help="candidate training epochs")
    parser.add_argument("--supernet-epochs", type=int, default=4)
    parser.add_argument("--theta-lr", type=float, default=0.2)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--handoff", default="bands", choices=["bands", "pareto"])
    parser.add_argument(
        "--finetune", action="store_true", help="finetune=true (default: trained alone)"
    )
    parser.add_argument("--options", default="{}", help="more strategy options, JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="keep the runs under this folder")
    parser.add_argument(
        "--knee-ratio", action="store_true",
        help="also train the front's knee alone for the supernet's epochs: search / knee",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        if args.knee_ratio:
            from supernet_cost import warm_up

            warm_up("nb201", {"channels": args.channels, "cells_per_stage": 1}, root / "warm-up")
        for strategy in args.strategies:
            tag = f"{strategy}-{args.handoff}-c{args.channels}-s{args.seed}"
            print(json.dumps(run(strategy, args, root / tag)), flush=True)


if __name__ == "__main__":
    main()
