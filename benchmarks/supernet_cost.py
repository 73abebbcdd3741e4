"""What one supernet search costs, and what it finds, on digits on the CPU (or a GPU).

1. Search cost: an FBNet search (``hwnas.search``, strategy ``fbnet`` with its default
   options unless given: one supernet training with five theta heads, then its candidates
   trained from scratch, or fine-tuned from the supernet's weights with ``--finetune``) against
   training one of its final architectures (the front's knee) from scratch for the same
   number of epochs with the same settings. Reported: the supernet's training time, the
   supernet search (event ``supernet_front``'s ``search_seconds``: cost terms, training,
   one-shot scoring and hand-off), the supernet phase (from the start of the search to the
   first candidate: the same plus loading the data and imports), the whole search's wall
   time, the single training's time, and the front's size on error x latency x params.
2. Peak memory of one supernet weight step (forward + backward, batch 64, 3x32x32, the default
   ``mobilenet`` space with 9 searchable layers) with all candidates (``paths=full``) against
   path sampling (``two``, ``one``). On a CPU: the peak of bytes allocated, as torch's allocator
   reports it to ``torch.profiler`` (``profile_memory=True``), less the bytes allocated before
   the step; on CUDA: ``torch.cuda.max_memory_allocated`` after a reset, less the bytes
   allocated before the step. The time of that step is reported too.
3. Quality: the hypervolume of the FBNet run's front against random search (every candidate
   trained from scratch for the same epochs as FBNet's candidates) given the same wall time.
   Both fronts are scaled by the ideal and nadir of all trials of both runs (reference 1.1).
   Latency comes from the ``cpu`` device's lookup table in both runs (``--latency lut``).

    python benchmarks/supernet_cost.py                  # ~10 minutes on a 2-core CPU
    python benchmarks/supernet_cost.py --smoke          # a tiny version, to check it runs
    python benchmarks/supernet_cost.py --paths full --theta-heads all --finetune \
        --candidate-epochs 1 --out /tmp/supernet-bench    # the published supernet settings
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SPACE = {"stages": [[16, 1, 1], [24, 2, 2], [32, 2, 1]], "head_channels": 64}
SMOKE_SPACE = {"stages": [[8, 1, 1], [16, 2, 1]], "head_channels": 32}
DIGITS = (1, 16, 16)
OBJECTIVES = ["error", "latency", "params"]


def build_lut(space_options: dict[str, Any]) -> None:
    import warnings

    from hwnas.devices import load_device
    from hwnas.profilers.lut import LatencyTable, table_path
    from hwnas.spaces import make_space

    space = make_space("mobilenet", space_options)
    profile = load_device("cpu")
    path = table_path(profile, space, num_classes=10, input_shape=DIGITS)
    if not path.is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            LatencyTable.build(space, profile, num_classes=10, input_shape=DIGITS).save(path)


def warm_up(space: str, space_options: dict[str, Any], out: Path, **run: Any) -> None:
    """A throwaway one-candidate search first, so that the measured one does not pay this
    process's first imports (torch's compiler stack on the first MAC count, ONNX export,
    onnxruntime: seconds on this machine), which the knee's training after it would not."""
    import hwnas

    hwnas.run_search(
        space=space, space_options=space_options, strategy="fbnet", dataset="digits",
        device="cpu", objectives=OBJECTIVES, budget=1, out=out,
        training={"epochs": 0.05, "batch_size": 32, "train_device": "cpu"},
        strategy_options={"epochs": 1, "warmup_epochs": 0}, **run,
    )  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)


def search_cost(args: argparse.Namespace, space_options: dict[str, Any], out: Path) -> dict:
    import hwnas
    from hwnas.spaces import make_space
    from hwnas.training.datasets.catalog import load_dataset
    from hwnas.training.settings import TrainSettings
    from hwnas.training.trainer import train

    training = {"epochs": args.candidate_epochs, "batch_size": 32, "train_device": args.device}
    options = {"epochs": args.epochs, "warmup_epochs": 1, "theta_lr": 0.2,
               "finetune": args.finetune}  # fmt: skip
    options.update({k: v for k, v in (("paths", args.paths), ("theta_heads", args.theta_heads))
                    if v is not None})  # fmt: skip
    started, started_unix = time.perf_counter(), time.time()
    result = hwnas.run_search(
        space="mobilenet", space_options=space_options, strategy="fbnet", dataset="digits",
        device="cpu", objectives=OBJECTIVES, budget=args.budget, training=training,
        strategy_options=options, profiling={"latency": "lut"}, out=out / "fbnet",
    )  # fmt: skip
    wall = time.perf_counter() - started
    events = _events(out / "fbnet", "supernet_epoch")
    supernet_seconds = events[-1]["seconds"]
    # The supernet phase: everything before the first candidate starts training; the search
    # itself (cost terms, training, hand-off) is the same without loading the run's data.
    phase_seconds = min(t.started for t in result.trials if t.started) - started_unix
    (front,) = _events(out / "fbnet", "supernet_front")
    knee = result.front.knee or result.front.members[0]
    slowest = max(result.front.members, key=lambda t: t.value("latency"))
    space = make_space("mobilenet", space_options)
    data = load_dataset("digits", seed=0)
    settings = TrainSettings(epochs=args.epochs, batch_size=32)
    heavy = train(space.build(slowest.genotype, num_classes=10, in_channels=1), data, settings,
                  device=args.device, seed=0)  # fmt: skip
    model = space.build(knee.genotype, num_classes=10, in_channels=1)
    single_started = time.perf_counter()
    single = train(model, data, settings, device=args.device, seed=0)
    single_wall = time.perf_counter() - single_started
    return {
        "slowest_member": slowest.genotype.spec,
        "slowest_train_s": heavy.train_time,
        "supernet_vs_slowest": supernet_seconds / heavy.train_time,
        "result": result,
        "wall_s": wall,
        "supernet_s": supernet_seconds,
        "phase_s": phase_seconds,
        "search_s": front["search_seconds"],
        "derive_s": front["derive_seconds"],
        "search_vs_single": front["search_seconds"] / single.train_time,
        "single_train_s": single.train_time,
        "single_wall_s": single_wall,
        "knee": knee.genotype.spec,
        "front": len(result.front.members),
        "trials": len(result.trials),
        "supernet_vs_single": supernet_seconds / single.train_time,
        "phase_vs_single": phase_seconds / single.train_time,
        "whole_vs_single": wall / single_wall,
    }


def random_search(args: argparse.Namespace, space_options: dict, out: Path, seconds: float):
    import hwnas

    training = {"epochs": args.candidate_epochs, "batch_size": 32, "train_device": args.device}
    return hwnas.run_search(
        space="mobilenet", space_options=space_options, strategy="random", dataset="digits",
        device="cpu", objectives=OBJECTIVES, time_budget=seconds, training=training,
        profiling={"latency": "lut"}, out=out / "random",
    )  # fmt: skip


def shared_hypervolumes(runs: dict[str, Any]) -> dict[str, float]:
    from hwnas.objectives.pareto import nondominated_mask, normalised_hypervolume

    rows = {}
    for name, result in runs.items():
        F = np.array([[t.value(m) for m in OBJECTIVES] for t in result.trials if t.state.finished])
        rows[name] = F[np.isfinite(F).all(axis=1)]
    union = np.vstack(list(rows.values()))
    ideal, nadir = union.min(axis=0), union.max(axis=0)
    return {
        name: normalised_hypervolume(F[nondominated_mask(F)], ideal, nadir, 1.1)
        for name, F in rows.items()
    }


def step_memory(paths: str, *, device: str, batch: int) -> dict[str, float]:
    """Peak extra bytes and seconds of one supernet weight step (see the module docstring)."""
    from torch.nn import functional as F

    from hwnas.search.supernet.network import Supernet
    from hwnas.search.supernet.relax import relax
    from hwnas.spaces import make_space
    from hwnas.spaces.blocks import make_head

    space = make_space("mobilenet")
    dev = torch.device(device)
    torch.manual_seed(0)
    last = space.slot_specs()[-1].out_channels
    model = Supernet(space, head=make_head(last, space.head_out_channels, 10)).to(dev)
    theta = [torch.zeros(n, device=dev) for n in model.num_choices]
    x = torch.randn(batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        r = relax(theta, kind="gumbel", paths=paths, temperature=5.0, generator=generator)
        loss = F.cross_entropy(model(x, r.mix, r.active), y)
        model.zero_grad(set_to_none=True)
        loss.backward()

    step()  # warm-up (allocator caches, lazy initialisation)
    model.zero_grad(set_to_none=True)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        started = time.perf_counter()
        step()
        torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - started
        return {"peak_bytes": torch.cuda.max_memory_allocated(dev) - before, "seconds": seconds}
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    seconds = time.perf_counter() - started
    totals = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation:
            totals.append((event.start_time_ns, int(event.extra_fields.total_allocated),
                           int(event.extra_fields.alloc_size)))  # fmt: skip
        stack.extend(event.children)
    totals.sort()
    # Bytes held before the step = the first event's total less its own allocation.
    base = totals[0][1] - totals[0][2] if totals else 0
    peak = max(t for _, t, _ in totals) - base if totals else 0
    return {"peak_bytes": peak, "seconds": seconds}


def _events(run_dir: Path, kind: str) -> list[dict]:
    import sqlite3

    with sqlite3.connect(run_dir / "hwnas.db") as db:
        rows = db.execute("SELECT data FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [json.loads(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=3, help="supernet epochs (and the single training's)"
    )
    parser.add_argument("--candidate-epochs", type=float, default=3.0)
    parser.add_argument("--paths", default=None, choices=["full", "two", "one"])
    parser.add_argument("--theta-heads", default=None, choices=["all", "rotate"])
    parser.add_argument("--finetune", action="store_true", help="finetune=true")
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--device", default="cpu", help="training device: cpu or cuda")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space_options = SMOKE_SPACE if args.smoke else SPACE
    if args.smoke:
        args.epochs, args.candidate_epochs, args.budget = 2, 0.3, 4
    out = args.out or Path(tempfile.mkdtemp(prefix="supernet-bench-"))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.environ["HWNAS_CACHE_DIR"] = str(out / "cache")  # the tables this benchmark builds

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} thread(s), training on {args.device}; runs in {out}")  # fmt: skip
    build_lut(space_options)
    warm_up("mobilenet", space_options, out / "warm-up", profiling={"latency": "lut"})
    cost = search_cost(args, space_options, out)
    print(f"\n1. search cost (supernet {args.epochs} epochs, paths={args.paths or 'default'}, "
          f"theta_heads={args.theta_heads or 'default'}, 5 heads):")  # fmt: skip
    print(f"   supernet training {cost['supernet_s']:.1f} s; supernet search {cost['search_s']:.1f}"
          f" s (hand-off {cost['derive_s']:.1f} s); supernet phase {cost['phase_s']:.1f} s; "
          f"whole search (with {cost['trials']} candidates) {cost['wall_s']:.1f} s")  # fmt: skip
    print(f"   training the knee {cost['knee']} alone for {args.epochs} epochs: "
          f"{cost['single_train_s']:.1f} s ({cost['single_wall_s']:.1f} s wall)")  # fmt: skip
    print(f"   supernet / one training = {cost['supernet_vs_single']:.2f}x; "
          f"supernet phase / one training = {cost['phase_vs_single']:.2f}x; "
          f"supernet search (without loading data) / one training = "
          f"{cost['search_vs_single']:.2f}x; whole search / one training = "
          f"{cost['whole_vs_single']:.2f}x; "
          f"front: {cost['front']} of {cost['trials']} architectures")  # fmt: skip
    print(f"   the front's slowest member {cost['slowest_member']} alone: "
          f"{cost['slowest_train_s']:.1f} s; supernet / that = "
          f"{cost['supernet_vs_slowest']:.2f}x")  # fmt: skip

    random = random_search(args, space_options, out, cost["wall_s"])
    hv = shared_hypervolumes({"fbnet": cost["result"], "random": random})
    done = sum(t.state.finished for t in random.trials)
    print(f"\n3. same wall time ({cost['wall_s']:.0f} s): fbnet {len(cost['result'].trials)} "
          f"trials, front {cost['front']}, HV {hv['fbnet']:.4f}; random {done} trials, "
          f"front {len(random.front.members)}, HV {hv['random']:.4f} (reference 1.1 per axis: "
          f"at most {1.1 ** len(OBJECTIVES):.3f})")  # fmt: skip

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"\n2. one supernet weight step, default mobilenet space, batch 64, on {device}:")
    memory = {}
    for paths in ("full", "two", "one"):
        memory[paths] = step_memory(paths, device=device, batch=8 if args.smoke else 64)
        print(f"   paths={paths:4s}: peak {memory[paths]['peak_bytes'] / 2**20:8.1f} MiB, "
              f"{memory[paths]['seconds']:.2f} s")  # fmt: skip
    summary = {
        "search": {k: v for k, v in cost.items() if k != "result"},
        "hypervolume": hv,
        "random": {"trials": done, "front": len(random.front.members)},
        "memory": memory,
        "memory_method": "cuda max_memory_allocated" if device == "cuda" else "torch.profiler",
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nsummary: {out / 'summary.json'}")


if __name__ == "__main__":
    main()
