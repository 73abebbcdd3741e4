"""Supernet training against training the front's knee alone, in one process (same load).

The nb201 cell supernet (5 DARTS heads) is trained for ``--epochs`` (1 warm-up) with the
published settings (all paths, every head per theta step) and with the cheap ones
(``paths=one``, ``theta_heads=rotate``); the knee architecture is trained alone for the same
epochs with the same batch size. Weight- and theta-step seconds show what dominates.

    OMP_NUM_THREADS=1 python benchmarks/supernet_knee_ratio.py --knee SPEC
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    from hwnas.search.supernet.cells import CellClassificationTask, cell_counted_terms
    from hwnas.search.supernet.costs import CostSet
    from hwnas.search.supernet.losses import PenaltyLoss
    from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer
    from hwnas.spaces import make_space
    from hwnas.training.datasets.catalog import load_dataset
    from hwnas.training.settings import TrainSettings
    from hwnas.training.trainer import train

    data = load_dataset("digits", seed=0)
    space = make_space("nb201", CELL)
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
        rows.append({
            "paths": paths, "theta_heads": theta_heads, "supernet_s": round(trainer.train_seconds, 1),
            "weight_step_s": round(sum(e["weight_step_s"] for e in log), 1),
            "theta_step_s": round(sum(e["theta_step_s"] for e in log), 1),
        })  # fmt: skip
    started = time.perf_counter()
    knee = train(space.build(space.parse(args.knee), num_classes=10, in_channels=1), data,
                 TrainSettings(epochs=args.epochs, batch_size=32), device="cpu", seed=0)  # fmt: skip
    for row in rows:
        row["knee_train_s"] = round(knee.train_time, 1)
        row["ratio"] = round(row["supernet_s"] / knee.train_time, 2)
        print(json.dumps(row), flush=True)
    print(f"knee wall {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
