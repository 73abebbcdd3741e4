"""Supernet search against training the front's knee alone, in one process (same load).

The nb201 cell supernet (5 DARTS heads) is trained for ``--epochs`` (1 warm-up) with the
published settings (all paths, every head per theta step) and with the cheap ones
(``paths=one``, ``theta_heads=rotate``), then scores a pool of 40 architectures one-shot as the
hand-off does; the knee architecture (``--knee SPEC`` or the knee of the run ``--run DIR``) is
trained alone for the same epochs with the same batch size. Weight-step, theta-step and
scoring seconds show what dominates.

    OMP_NUM_THREADS=1 python benchmarks/supernet_knee_ratio.py --run runs/darts-nb201
"""

from __future__ import annotations

import argparse
import json
import time

import torch

CELL = {"channels": 8, "cells_per_stage": 1}
KNEE = "|skip_connect~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|skip_connect~2|"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--knee", default=KNEE)
    parser.add_argument("--run", default=None, help="take the knee of this run's front")
    parser.add_argument("--channels", type=int, default=CELL["channels"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.run:
        from hwnas.results import read_run

        knee_trial = read_run(args.run).front.knee
        assert knee_trial is not None, f"{args.run} has no front"
        args.knee = knee_trial.genotype.spec
    from hwnas.search.supernet.cells import CellClassificationTask, cell_counted_terms
    from hwnas.search.supernet.costs import CostSet
    from hwnas.search.supernet.losses import PenaltyLoss
    from hwnas.search.supernet.ranking import oneshot_accuracies
    from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer
    from hwnas.spaces import make_space
    from hwnas.training.datasets.catalog import load_dataset
    from hwnas.training.settings import TrainSettings
    from hwnas.training.trainer import train

    data = load_dataset("digits", seed=0)
    space = make_space("nb201", {**CELL, "channels": args.channels})
    task = CellClassificationTask(space=space, data=data, settings=TrainSettings(batch_size=32))
    costs = CostSet(cell_counted_terms(space, ["params"], num_classes=10, input_shape=(1, 16, 16)))
    rows = []
    for paths, theta_heads in (("full", "all"), ("one", "rotate"), ("full", "rotate")):
        log: list[dict] = []
        trainer = SupernetTrainer(
            task=task, costs=costs, heads=[PenaltyLoss(v) for v in (0, 0.1, 0.3, 1, 3)],
            settings=SupernetSettings(epochs=args.epochs, warmup_epochs=1, relaxation="softmax",
                                      paths=paths, theta_heads=theta_heads, theta_lr=0.2),
            log=lambda kind, log=log, **d: log.append(d) if kind == "supernet_epoch" else None,
        )  # fmt: skip
        trainer.train()
        pool = [space.from_index(i) for i in range(0, 15625, 15625 // 40)][:40]
        started = time.perf_counter()
        oneshot_accuracies(trainer, pool, seed=0)
        scoring = time.perf_counter() - started
        rows.append({
            "paths": paths, "theta_heads": theta_heads,
            "supernet_s": round(trainer.train_seconds + scoring, 1),
            "scoring_s": round(scoring, 1),
            "weight_step_s": round(sum(e["weight_step_s"] for e in log), 1),
            "theta_step_s": round(sum(e["theta_step_s"] for e in log), 1),
        })  # fmt: skip
    started = time.perf_counter()
    knee = train(space.build(space.parse(args.knee), num_classes=10, in_channels=1), data,
                 TrainSettings(epochs=args.epochs, batch_size=32), device="cpu", seed=0)  # fmt: skip
    for row in rows:
        row["knee_train_s"] = round(knee.train_time, 1)
        row["ratio"] = round(row["supernet_s"] / knee.train_time, 2)
        row["knee"] = args.knee
        print(json.dumps(row), flush=True)
    print(f"knee wall {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
