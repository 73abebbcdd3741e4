"""Summarise `enas` runs: front size, supernet and total time, one-shot ranking quality.

    python benchmarks/enas_front.py runs/enas-mobilenet runs/enas-nb201

For each run directory: trials, Pareto front size on the run's objectives, seconds of the
shared-weight training (from the `enas_front` event), wall seconds of the trials, and Kendall
tau between each candidate's one-shot error (the shared weights, `info["one_shot"]`) and its
error after fine-tuning (how far the controller's ranking can be trusted on this run).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import kendalltau

from hwnas.objectives.base import parse_objective
from hwnas.objectives.pareto import nondominated_mask
from hwnas.store import RunStore
from hwnas.types import TrialState


def summarise(run_dir: str) -> dict:
    with RunStore.open(run_dir, read_only=True) as store:
        config = store.config()
        trials = store.trials([TrialState.COMPLETE])
        front_event = store.events("enas_front")
        epochs = store.events("supernet_epoch")
    objectives = [parse_objective(o) for o in config["objectives"]]
    rows = np.array([[o.sign * t.value(o.metric) for o in objectives] for t in trials])
    front = int(nondominated_mask(rows).sum()) if len(rows) else 0
    one_shot = [t.candidate.info.get("one_shot", {}).get("error") for t in trials]
    final = [t.value("error") for t in trials]
    pairs = [(a, b) for a, b in zip(one_shot, final) if a is not None]
    tau = kendalltau(*zip(*pairs)).statistic if len(pairs) >= 3 else None
    started = [t.started for t in trials if t.started]
    finished = [t.finished for t in trials if t.finished]
    return {
        "run": run_dir,
        "trials": len(trials),
        "front": front,
        "supernet_seconds": front_event[-1]["train_seconds"] if front_event else None,
        "supernet_epochs": len(epochs),
        "trial_seconds": round(max(finished) - min(started), 1) if started and finished else None,
        "kendall_tau_one_shot_vs_finetuned_error": None if tau is None else round(float(tau), 3),
        "errors": sorted(round(e, 2) for e in final),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    for run in parser.parse_args().runs:
        print(json.dumps(summarise(run)))


if __name__ == "__main__":
    main()
