"""How well hwnas's latency table and predictor match measured latency, and what profiling costs.

For each device (default: ``cpu`` = torch eager and ``ort-cpu`` = onnxruntime, 1 thread):

1. builds the latency table of the ``mobilenet`` space (every distinct block measured once);
2. measures ``--samples`` random architectures end to end (interleaved in one session) and
   compares with the table sum and with the learned predictor: share within +-10% and +-5%,
   MAPE and Kendall tau. The predictor's figures are out-of-fold (5-fold cross-validation, the
   model choice redone in every fold), so every architecture counts and none is predicted by a
   model that saw it; the calibration's own held-out split (25%) is reported too;
3. repeatability: ``--sessions`` separate measurements of 5 architectures, the coefficient of
   variation of their medians;
4. the time per architecture of the cheap profile (build on the meta device, MACs, params,
   size) against fvcore's ``FlopCountAnalysis`` (real model, the same MAC figure), same run.

Usage (full, as recorded in docs/benchmarks.md; ~10 minutes on an idle 2-core CPU):

    python benchmarks/profiler_fidelity.py --device cpu --device ort-cpu --samples 200

Smoke test (a minute): ``--samples 20 --repeats 5 --sessions 3 --cheap-samples 5``.
Results are printed as Markdown and written as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.devices import load_device
from hwnas.hardware import availability, cpu_model
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.lut import LatencyTable
from hwnas.profilers.predictor import (
    LatencyPredictor,
    cross_validated,
    fidelity,
    measure_architectures,
)
from hwnas.spaces.mobilenet import MobileNetSpace

TARGETS = {"within_10": 0.95, "kendall_tau": 0.9, "median_cv": 0.03, "cheap_speedup": 5.0}


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _sample(space: MobileNetSpace, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    chosen: dict[str, Any] = {}
    while len(chosen) < n:
        g = space.sample(rng)
        chosen.setdefault(g.key(), g)
    return list(chosen.values())


def fidelity_on_device(profile: Any, space: MobileNetSpace, args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    _log(f"[{profile.name}] building the latency table")
    table = LatencyTable.build(space, profile, num_classes=10, repeats=args.repeats, seed=args.seed)
    lut_seconds = time.perf_counter() - start
    genotypes = _sample(space, args.samples, args.seed)
    _log(f"[{profile.name}] measuring {len(genotypes)} architectures end to end")
    start = time.perf_counter()
    measured = measure_architectures(
        genotypes,
        profile,
        space=space,
        num_classes=10,
        input_shape=space.input_shape,
        repeats=args.repeats,
        seed=args.seed,
    )
    measure_seconds = time.perf_counter() - start
    y = np.array([m.value for m in measured])
    lut = np.array([table.predict(g) for g in genotypes])
    oof = cross_validated(table, genotypes, y, folds=5, seed=args.seed)
    split = LatencyPredictor(table=table, genotypes=genotypes, measured=y, seed=args.seed)
    return {
        "device": profile.name,
        "profile": profile.to_json(),
        "entries": len(table.entries),
        "lut_seconds": round(lut_seconds, 1),
        "measure_seconds": round(measure_seconds, 1),
        "median_rcv": float(np.median([m.stats["rcv"] for m in measured])),
        "latency_ms": {"min": float(y.min()), "median": float(np.median(y)), "max": float(y.max())},
        "lut": fidelity(lut, y),
        "predictor_cv": fidelity(oof, y),
        "predictor_holdout": split.report["predictor"],
        "lut_holdout": split.report["lut"],
        "model": split.kind,
        "cv_mape": split.report.get("cv_mape", {}),
    }


def repeatability(profile: Any, space: MobileNetSpace, args: argparse.Namespace) -> dict:
    genotypes = _sample(space, 5, args.seed + 1)
    medians: list[list[float]] = [[] for _ in genotypes]
    for session in range(args.sessions):
        ms = measure_architectures(
            genotypes,
            profile,
            space=space,
            num_classes=10,
            input_shape=space.input_shape,
            repeats=args.repeats,
            seed=args.seed + session,
        )
        for i, m in enumerate(ms):
            medians[i].append(m.value)
    cvs = [statistics.stdev(v) / statistics.mean(v) for v in medians]
    return {"sessions": args.sessions, "cv": cvs, "median_cv": float(np.median(cvs))}


def cheap_profile_speed(space: MobileNetSpace, n: int, seed: int) -> dict:
    """Seconds per architecture: hwnas's cheap profile against fvcore, the same genotypes."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore imports torch.jit.script
        from fvcore.nn import FlopCountAnalysis

    from hwnas.profilers.cheap import count_macs, count_params, fp32_size_bytes

    genotypes = _sample(space, n, seed + 2)
    # Warm both paths once (imports, first-call initialisation) outside the timing.
    for g in genotypes[:1]:
        with torch.device("meta"):
            count_macs(space.build(g, num_classes=10), space.input_shape)
    start = time.perf_counter()
    cheap = []
    for g in genotypes:
        with torch.device("meta"):
            model = space.build(g, num_classes=10)
        cheap.append(
            (count_macs(model, space.input_shape), count_params(model), fp32_size_bytes(model))
        )
    cheap_s = (time.perf_counter() - start) / n
    # What searches use for unevaluated genotypes: the exact additive model (built once per
    # space from one meta build per layer choice, checked exact, then a sum per genotype).
    from hwnas.profilers.additive import additive_model

    start = time.perf_counter()
    model_of_space = additive_model(space, 10, space.input_shape)
    additive_build_s = time.perf_counter() - start
    assert model_of_space is not None
    start = time.perf_counter()
    additive = [model_of_space.predict(space.to_indices(g)) for g in genotypes]
    additive_s = (time.perf_counter() - start) / n
    additive_exact = sum(
        int(a["params"] == c[1] and a["macs"] == c[0]) for a, c in zip(additive, cheap)
    )
    x = torch.zeros(1, *space.input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = space.build(genotypes[0], num_classes=10).eval()
        FlopCountAnalysis(model, x).unsupported_ops_warnings(False).total()
        start = time.perf_counter()
        agree = 0
        for g, (macs, _, _) in zip(genotypes, cheap):
            model = space.build(g, num_classes=10).eval()
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_op = analysis.by_operator()
            sum(p.numel() for p in model.parameters())
            agree += int(by_op.get("conv", 0) + by_op.get("linear", 0) == macs)
        fvcore_s = (time.perf_counter() - start) / n
    return {
        "n": n,
        "cheap_ms": cheap_s * 1e3,
        "fvcore_ms": fvcore_s * 1e3,
        "speedup": fvcore_s / cheap_s,
        "additive_build_s": additive_build_s,
        "additive_ms": additive_s * 1e3,
        "additive_speedup": fvcore_s / additive_s,
        "additive_exact": additive_exact,
        "macs_agree": agree,
    }


def _pct(x: float) -> str:
    return f"{x:.1%}"


def markdown(results: dict) -> str:
    lines = [
        "| device | predictor | within ±10% | within ±5% | MAPE | Kendall tau | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["devices"]:
        rows = (
            ("LUT sum", r["lut"]),
            ("predictor (5-fold out-of-fold)", r["predictor_cv"]),
            ("predictor (25% held out)", r["predictor_holdout"]),
        )
        for name, f in rows:
            lines.append(
                f"| {r['device']} | {name} | {_pct(f['within_10'])} | {_pct(f['within_5'])} | "
                f"{_pct(f['mape'])} | {f['kendall_tau']:.3f} | {int(f['n'])} |"
            )
    lines += [
        "",
        "| device | entries | LUT build (s) | end-to-end (s) | median robust CV | "
        "latency min / median / max (ms) | model |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["devices"]:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['device']} | {r['entries']} | {r['lut_seconds']} | {r['measure_seconds']} | "
            f"{_pct(r['median_rcv'])} | {lat['min']:.3f} / {lat['median']:.3f} / "
            f"{lat['max']:.3f} | {r['model']} |"
        )
    lines += [
        "",
        "| device | CV of re-measurements (5 architectures) | median CV |",
        "|---|---|---|",
    ]
    for name, rep in results["repeatability"].items():
        cvs = ", ".join(_pct(c) for c in rep["cv"])
        lines.append(f"| {name} | {cvs} ({rep['sessions']} sessions) | {_pct(rep['median_cv'])} |")
    c = results.get("cheap")
    if c:
        lines += [
            "",
            f"Cheap profile (meta build + MACs + params + size): {c['cheap_ms']:.1f} ms per "
            f"architecture; fvcore FlopCountAnalysis (real build + count): {c['fvcore_ms']:.1f} ms; "
            f"speedup {c['speedup']:.1f}x over {c['n']} architectures; MACs agree on "
            f"{c['macs_agree']}/{c['n']}.",
            f"Search-time cheap profile (exact additive model, {c['additive_build_s']:.1f} s to "
            f"build once per space): {c['additive_ms'] * 1e3:.0f} µs per architecture; speedup "
            f"{c['additive_speedup']:,.0f}x over fvcore; params and MACs equal the meta build on "
            f"{c['additive_exact']}/{c['n']}.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", help="device profile (repeatable)")
    parser.add_argument("--samples", type=int, default=200, help="random architectures")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (profile's)")
    parser.add_argument("--threads", type=int, default=None, help="override profile threads")
    parser.add_argument("--sessions", type=int, default=10, help="re-measurements for the CV")
    parser.add_argument("--cheap-samples", type=int, default=50, help="architectures timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("profiler_fidelity.json"))
    args = parser.parse_args(argv)
    space = MobileNetSpace()
    results: dict[str, Any] = {
        "machine": {
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(sys.argv),
        },
        "devices": [],
        "repeatability": {},
    }
    for name in args.device or ["cpu", "ort-cpu"]:
        profile = load_device(name)
        if args.threads is not None:
            clock = profile.clock if args.threads == 1 else "wall"
            profile = replace(profile, threads=args.threads, clock=clock)
        state = availability(profile)
        if not state.usable:
            _log(f"skipping {name}: {state.reason}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpreadWarning)
            results["devices"].append(fidelity_on_device(profile, space, args))
            _log(f"[{name}] repeatability: {args.sessions} sessions of 5 architectures")
            results["repeatability"][name] = repeatability(profile, space, args)
    if args.cheap_samples:
        _log(f"cheap profile against fvcore on {args.cheap_samples} architectures")
        results["cheap"] = cheap_profile_speed(space, args.cheap_samples, args.seed)
    args.out.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"\n(JSON: {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
