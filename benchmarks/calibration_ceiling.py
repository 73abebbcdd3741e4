"""How well can any predictor match NB201's phone latencies? A ceiling from cells that are the
same network.

HW-NAS-Bench measured every NB201 cell separately, including the 1,500 pairs of cells that are
one network with nodes 1 and 2 numbered the other way round (``NB201Space.network_key``). The
two measurements of such a pair differ only by measurement noise (FPGA and Eyeriss give them
identical latencies: checked here; those columns depend on the operations only). From the pairs:

- the *leave-one-out oracle*: each cell predicted by the other member of its group (median and
  mean of the others), share within +-10% and Kendall tau;
- the *hindsight ceiling*: for each group, the one value that puts the most members within
  +-10% (what any predictor that gives one network one latency can reach at best on them), and
  the bound it implies for the whole table (every cell outside a group counted as a hit);
- the *independence bound*: if the two measurements of a network are independent draws from
  one distribution, a predictor giving the network one value hits both with probability
  p^2 <= P(|log y1 - log y2| <= log(11/9)), so the expected share is at most sqrt(that share
  of pairs);
- a *noise-model estimate*: a scale mixture of normals for the log noise, fitted to the pairs'
  log ratios by EM (one scale per network, or one per measurement), and what a predictor that
  knows the noise-free latency scores against single measurements (share, and Kendall tau over
  the table's spread of latencies, simulated);
- hwnas's transfer calibration (with and without denoised columns) and the naive transfer with
  ``--samples`` measurements, scored against the single measurement and against the pair's
  mean (noise halved), on the paired cells outside the samples.

The same figures are printed for the looser grouping "same function, same operations"
(``function_key`` and the multiset of operations): those cells are wired differently, and the
phones time them further apart than the pairs, so that grouping bounds predictors that ignore
wiring, not the noise.

    OMP_NUM_THREADS=1 python benchmarks/calibration_ceiling.py            # 10 draws, ~1-2 min
    OMP_NUM_THREADS=1 python benchmarks/calibration_ceiling.py --draws 0  # ceilings only
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, norm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwnas.spaces.nb201 import NB201Space  # noqa: E402

NB201_CSV = REPO.parent / "shared" / "data" / "nb201_cifar10_hw.csv"
COLUMNS = {
    "lat_fpga_ms": "FPGA",
    "lat_eyeriss_ms": "Eyeriss",
    "lat_pixel3_ms": "Pixel 3",
    "lat_raspi4_ms": "Raspberry Pi 4",
}
PHONES = ("lat_pixel3_ms", "lat_raspi4_ms")
WIDTH = np.log(1.1 / 0.9)  # v within +-10% of y1 and of y2 needs |log y1 - log y2| <= this
SCALES = np.geomspace(0.002, 5.0, 28)  # of the log noise, for the mixture fits


def within(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y) / y <= 0.1))


def tau(p: np.ndarray, y: np.ndarray) -> float:
    return float(kendalltau(p, y).statistic)


def most_within(y: np.ndarray) -> int:
    """The most members of ``y`` that one value puts within +-10% (v in [0.9 y, 1.1 y]): the
    deepest overlap of those intervals, reached at one of their ends."""
    lo, hi = 0.9 * y, 1.1 * y
    ends = np.concatenate([lo, hi])
    return int(max(np.sum((lo <= c * (1 + 1e-12)) & (c <= hi * (1 + 1e-12))) for c in ends))


def groups_of(keys: list) -> list[np.ndarray]:
    members: dict = defaultdict(list)
    for i, k in enumerate(keys):
        members[k].append(i)
    return [np.array(v) for v in members.values() if len(v) > 1]


def oracle(y: np.ndarray, groups: list[np.ndarray]) -> dict[str, float]:
    """Leave-one-out median / mean of the other members, and the hindsight ceiling."""
    med, mean = np.full(len(y), np.nan), np.full(len(y), np.nan)
    hits = 0
    for g in groups:
        for k, i in enumerate(g):
            rest = np.delete(y[g], k)
            med[i], mean[i] = np.median(rest), np.mean(rest)
        hits += most_within(y[g])
    cells = np.concatenate(groups)
    return {
        "cells": len(cells),
        "median": (within(med[cells], y[cells]), tau(med[cells], y[cells])),
        "mean": (within(mean[cells], y[cells]), tau(mean[cells], y[cells])),
        "hindsight": hits / len(cells),
        "table": (len(y) - len(cells) + hits) / len(y),
    }


def wilson_upper(share: float, n: int, z: float = 1.96) -> float:
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre + half


def fit_mixture(d: np.ndarray, shared: bool, iters: int) -> np.ndarray:
    """Weights over SCALES of the log noise e, from d = e1 - e2 of the pairs (EM). ``shared``:
    both measurements of a network draw their noise with the network's one scale (d has
    variance 2 s^2); else each measurement draws its own scale (variance s_k^2 + s_l^2)."""
    k = len(SCALES)
    weights = np.full(k, 1.0 / k)
    if shared:
        var = 2 * SCALES**2
        dens = np.exp(-(d[:, None] ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
        for _ in range(iters):
            r = weights * dens
            weights = (r / r.sum(1, keepdims=True)).mean(0)
        return weights
    var = SCALES[:, None] ** 2 + SCALES[None, :] ** 2
    dens = np.exp(-(d[:, None, None] ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
    for _ in range(iters):
        r = weights[:, None] * weights[None, :] * dens
        r /= r.sum((1, 2), keepdims=True)
        weights = (r.sum((0, 2)) + r.sum((0, 1))) / (2 * len(d))
    return weights


def noise_free_scores(weights: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    """Share within +-10% and Kendall tau of a predictor that knows the noise-free latency
    (the best constant factor of it), against single measurements with log noise ~ weights;
    tau over the table's own spread of latencies (simulated)."""
    shifts = np.linspace(-0.05, 0.05, 101)
    lo, hi = shifts[:, None] + np.log(0.9), shifts[:, None] + np.log(1.1)  # log v - log y
    share = np.max(np.sum(weights * (norm.cdf(-lo / SCALES) - norm.cdf(-hi / SCALES)), axis=1))
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, SCALES[rng.choice(len(SCALES), len(y), p=weights)])
    return float(share), tau(y, y * np.exp(noise))


def calibration(
    table: dict[str, np.ndarray], pairs: list[np.ndarray], args: argparse.Namespace
) -> None:
    from hwnas.profilers.transfer import (
        KnownDevices,
        TransferPredictor,
        architecture_features,
        denoise,
        fit_predict,
        op_counts,
        sample_rows,
    )
    from hwnas.types import Genotype

    space = NB201Space()
    specs = tuple(table["arch_str"])
    genotypes = [Genotype("nb201", s) for s in specs]
    counts = op_counts(space, genotypes)
    everything = KnownDevices(specs=specs, columns={c: table[c] for c in COLUMNS})
    denoised = dict(zip(COLUMNS, denoise(everything, architecture_features(space, genotypes)).T))
    paired = np.concatenate(pairs)
    partner = np.empty(len(specs), dtype=int)
    for a, b in pairs:
        partner[a], partner[b] = b, a
    print(
        f"\n### Calibration with {args.samples} samples against measured and de-noised latency "
        f"(mean of {args.draws} draws; paired cells outside the samples)\n"
    )
    print(
        "| held-out device | predictor | all cells vs measured | paired cells vs measured | "
        "paired cells vs pair mean |"
    )
    print("|---|---|---|---|---|")
    for column in PHONES:
        y = table[column]
        rest = KnownDevices(specs=specs, columns={c: table[c] for c in COLUMNS if c != column})
        _, others = rest.matrix()
        scores: dict[str, list] = defaultdict(list)
        for draw in range(args.draws):
            rows = sample_rows(len(y), args.samples, seed=1000 * args.samples + draw)
            out = np.ones(len(y), dtype=bool)
            out[rows] = False
            cells = paired[out[paired] & out[partner[paired]]]
            pair_mean = (y[cells] + y[partner[cells]]) / 2
            predictor = TransferPredictor(
                known=rest,
                counts=counts,
                samples=rows,
                measured=y[rows],
                seed=draw,
                denoised=np.stack([denoised[c] for c in COLUMNS if c != column], axis=1),
            )
            before = TransferPredictor(
                known=rest, counts=counts, samples=rows, measured=y[rows], seed=draw
            )
            every = np.arange(len(y))
            naive = fit_predict("transfer", rows, y[rows], every, others=others, counts=counts)
            for name, p in (
                ("hwnas transfer", predictor.predict_all()),
                ("hwnas, raw columns only", before.predict_all()),
                ("naive transfer", naive),
            ):
                scores[name].append(
                    [
                        (tau(p[out], y[out]), within(p[out], y[out])),
                        (tau(p[cells], y[cells]), within(p[cells], y[cells])),
                        (tau(p[cells], pair_mean), within(p[cells], pair_mean)),
                    ]
                )
        for name, s in scores.items():
            means = np.mean(np.array(s), axis=0)
            cells_text = " | ".join(f"{t:.2f} / {w:.0%}" for t, w in means)
            print(f"| {COLUMNS[column]} | {name} | {cells_text} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, default=NB201_CSV)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--draws", type=int, default=10, help="calibration draws (0: skip)")
    parser.add_argument("--em-iters", type=int, default=400)
    args = parser.parse_args()
    start = time.perf_counter()
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; command: {' '.join(sys.argv)}"
    )
    with args.csv.open() as f:
        # In hwnas.profilers.transfer.load_known's order, so draws match remote_devices.py's.
        rows = sorted(csv.DictReader(f), key=lambda r: r["arch_str"])
    table: dict[str, np.ndarray] = {c: np.array([float(r[c]) for r in rows]) for c in COLUMNS}
    table["arch_str"] = np.array([r["arch_str"] for r in rows])
    space = NB201Space()
    genotypes = [space.parse(r["arch_str"]) for r in rows]
    ops = [tuple(sorted(space.choices(g))) for g in genotypes]
    groupings = {
        "same network": groups_of([space.network_key(g) for g in genotypes]),
        "same function and ops": groups_of(
            [(space.function_key(g), o) for g, o in zip(genotypes, ops)]
        ),
        "same ops (any wiring)": groups_of(ops),
    }

    print(f"\n### Groupings of the {len(rows)} cells\n")
    print("| grouping | groups (>= 2 cells) | cells in them | largest | FPGA / Eyeriss spread |")
    print("|---|---|---|---|---|")
    for name, groups in groupings.items():
        spread = [
            max(np.ptp(table[c][g]) / np.min(table[c][g]) for g in groups)
            for c in ("lat_fpga_ms", "lat_eyeriss_ms")
        ]
        print(
            f"| {name} | {len(groups)} | {sum(map(len, groups))} | {max(map(len, groups))} | "
            f"{spread[0]:.2g} / {spread[1]:.2g} |"
        )

    print("\n### Oracles on the phones (share within +-10% / Kendall tau over the grouped cells)\n")
    print(
        "| device | grouping | cells | LOO median of the others | LOO mean of the others | "
        "hindsight ceiling | implied bound, whole table |"
    )
    print("|---|---|---|---|---|---|---|")
    for column in PHONES:
        for name in ("same network", "same function and ops"):
            o = oracle(table[column], groupings[name])
            print(
                f"| {COLUMNS[column]} | {name} | {o['cells']} | {o['median'][0]:.1%} / "
                f"{o['median'][1]:.3f} | {o['mean'][0]:.1%} / {o['mean'][1]:.3f} | "
                f"{o['hindsight']:.1%} | {o['table']:.1%} |"
            )

    pairs = groupings["same network"]
    print("\n### The pairs' noise (1,500 pairs of one network measured twice)\n")
    print(
        "| device | median abs log ratio | pairs within log(11/9) | independence bound "
        "(95% upper) | noise-free predictor, model: one scale per network | "
        "one scale per measurement |"
    )
    print("|---|---|---|---|---|---|")
    for column in PHONES:
        y = table[column]
        d = np.log(y[[a for a, _ in pairs]] / y[[b for _, b in pairs]])
        q = float(np.mean(np.abs(d) <= WIDTH))
        models = [
            noise_free_scores(fit_mixture(d, shared, args.em_iters), y, seed=0)
            for shared in (True, False)
        ]
        print(
            f"| {COLUMNS[column]} | {np.median(np.abs(d)):.3f} | {q:.1%} | "
            f"{np.sqrt(q):.1%} ({np.sqrt(wilson_upper(q, len(d))):.1%}) | "
            + " | ".join(f"{s:.1%} / tau {t:.3f}" for s, t in models)
            + " |"
        )
    print(f"\n(ceilings: {time.perf_counter() - start:.1f} s)")
    if args.draws:
        calibration(table, pairs, args)
        print(f"\n(total: {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
