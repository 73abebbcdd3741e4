"""DARTS's collapse with and without a remedy, on the nb201 cell space on digits.

For each seed, DARTS (softmax relaxation, all paths, an accuracy-only head) trains one
supernet per remedy: plainly (``none``), with SDARTS random smoothing (``sdarts-rs``), with
RobustDARTS's early stopping on the dominant Hessian eigenvalue (``hessian-es``, whose derived
cell is that of the epoch it returned to) and with DARTS-'s decaying auxiliary skip
(``darts-minus``); the derived cell's share of skip connections and of parameter-free
operations is read after every epoch (the ``supernet_collapse`` event of a search, also printed
to stderr as it goes), and the final derived cell is trained alone briefly. ``--theta-lr``,
``--lr``, ``--warmup``, ``--channels`` and ``--cells`` set the regime (defaults: the earlier
8-epoch tables' 0.05, 0.05, 1, 8, 1).

    OMP_NUM_THREADS=1 python benchmarks/darts_collapse.py --epochs 10 --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/darts_collapse.py --remedies none hessian-es
    OMP_NUM_THREADS=1 python benchmarks/darts_collapse.py --remedies none darts-minus
    OMP_NUM_THREADS=1 python benchmarks/darts_collapse.py --smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import torch


def run(
    robust: str, epochs: int, seed: int, data: Any, standalone_epochs: float, args: Any
) -> dict:
    from hwnas.search.supernet.cells import CellClassificationTask, cell_counted_terms
    from hwnas.search.supernet.costs import CostSet
    from hwnas.search.supernet.losses import PenaltyLoss
    from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer
    from hwnas.spaces import make_space
    from hwnas.training.settings import TrainSettings
    from hwnas.training.trainer import train

    space = make_space("nb201", {"channels": args.channels, "cells_per_stage": args.cells})
    task = CellClassificationTask(
        space=space, data=data, settings=TrainSettings(batch_size=32, lr=0.05)
    )
    terms = cell_counted_terms(space, ["params"], num_classes=10, input_shape=data.input_shape)
    history: list[dict] = []
    events: list[tuple[str, dict]] = []

    def log(kind: str, **data: Any) -> None:
        events.append((kind, data))
        if kind == "supernet_collapse":
            history.append(data["heads"][0])
            h = history[-1]
            print(
                f"  {robust} seed {seed} epoch {data['epoch']}: skip {h['skip_share']:.2f}, "
                f"parameter-free {h['parameter_free_share']:.2f}",
                file=sys.stderr,
                flush=True,
            )

    settings = SupernetSettings(
        epochs=epochs, warmup_epochs=args.warmup, relaxation="softmax", paths="full",
        theta_lr=args.theta_lr, lr=args.lr, seed=seed, robust=robust,
    )  # fmt: skip
    trainer = SupernetTrainer(
        task=task, costs=CostSet(terms), heads=[PenaltyLoss(0.0)], settings=settings, log=log
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    cell = space.from_indices(trainer.argmax(0))
    final = trainer.head_summaries()[0]["collapse"]  # after an early stop: the restored logits
    eigen = [d.get("hessian_eigenvalues", [None])[0] for k, d in events if k == "supernet_epoch"]
    stopped = [d for k, d in events if k == "supernet_early_stop"]
    torch.manual_seed(seed)
    model = space.build(cell, num_classes=10, in_channels=data.input_shape[0])
    alone = train(model, data, TrainSettings(epochs=standalone_epochs, batch_size=32, lr=0.05),
                  device="cpu", seed=seed)  # fmt: skip
    return {
        "robust": robust, "seed": seed, "supernet_s": round(seconds, 1), "cell": cell.spec,
        "skip_share": [round(h["skip_share"], 3) for h in history],
        "parameter_free_share": [round(h["parameter_free_share"], 3) for h in history],
        "final_skip_share": round(final["skip_share"], 3),
        "final_parameter_free_share": round(final["parameter_free_share"], 3),
        "epochs_trained": trainer.epoch, "early_stop": stopped[0] if stopped else None,
        "hessian_eigenvalues": eigen,
        "standalone_accuracy": round(float(alone.accuracy), 2),
    }  # fmt: skip


def table(paths: list[str], every: int) -> None:
    """Markdown tables of JSON outputs: per run, then the seeds' mean shares every ``every``
    epochs (and the last), per remedy."""
    rows = []
    for path in paths:
        with open(path) as f:
            rows += json.load(f)
    short = {"none": "N", "skip_connect": "S", "nor_conv_1x1": "C1", "nor_conv_3x3": "C3",
             "avg_pool_3x3": "P"}  # fmt: skip

    def cell(spec: str) -> str:  # edges in order: N none, S skip, C1/C3 conv, P pooling
        return " ".join(short[t.split("~")[0]] for t in spec.split("|") if "~" in t)

    print("| remedy | seed | derived cell | skip | parameter-free | alone | supernet (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['robust']} | {r['seed']} | {cell(r['cell'])} | {r['final_skip_share']:.2f} | "
              f"{r['final_parameter_free_share']:.2f} | {r['standalone_accuracy']:.1f}% | "
              f"{r['supernet_s']:.0f} |")  # fmt: skip
    remedies = list(dict.fromkeys(r["robust"] for r in rows))
    epochs = max(len(r["skip_share"]) for r in rows)
    marks = sorted({*range(every, epochs + 1, every), 1, epochs})
    print("\n| remedy (mean of seeds) | " + " | ".join(f"ep. {e}" for e in marks) + " |")
    print("| --- |" + " --- |" * len(marks))
    for robust in remedies:
        mine = [r for r in rows if r["robust"] == robust]
        for key, label in (("skip_share", "skip"), ("parameter_free_share", "param.-free")):
            means = [sum(r[key][min(e, len(r[key])) - 1] for r in mine) / len(mine) for e in marks]
            print(f"| {robust}, {label} | " + " | ".join(f"{m:.2f}" for m in means) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--standalone-epochs", type=float, default=3.0)
    parser.add_argument(
        "--remedies", nargs="+", default=["none", "sdarts-rs", "hessian-es", "darts-minus"]
    )
    parser.add_argument("--theta-lr", type=float, default=0.05, help="Adam lr of theta")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD lr of the weights")
    parser.add_argument("--warmup", type=int, default=1, help="weight-only epochs first")
    parser.add_argument("--channels", type=int, default=8, help="nb201 channels")
    parser.add_argument("--cells", type=int, default=1, help="nb201 cells_per_stage")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--table", nargs="+", default=None, help="print tables of JSON outputs")
    parser.add_argument("--every", type=int, default=5, help="epochs between table columns")
    args = parser.parse_args()
    if args.table:
        table(args.table, args.every)
        return
    torch.set_num_threads(1)
    if args.smoke:
        args.epochs, args.seeds, args.standalone_epochs = 3, [0], 0.2
    from hwnas.training.datasets.catalog import load_dataset

    data = load_dataset("digits", seed=0)
    rows = []
    for seed in args.seeds:
        for robust in args.remedies:
            row = run(robust, args.epochs, seed, data, args.standalone_epochs, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for robust in args.remedies:
        mine = [r for r in rows if r["robust"] == robust]
        skip = sum(r["final_skip_share"] for r in mine) / len(mine)
        free = sum(r["final_parameter_free_share"] for r in mine) / len(mine)
        acc = sum(r["standalone_accuracy"] for r in mine) / len(mine)
        print(f"{robust:10s} final skip share {skip:.2f}, parameter-free share {free:.2f}, "
              f"derived cell alone {acc:.1f}% (mean of {len(mine)} seeds)")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
