"""Measuring on a board through the device server, pools of boards, and calibration by transfer.

Three parts, each printed as a markdown table (``--parts`` picks some):

- ``agreement``: ``--models`` random mobilenet networks (3x32x32, batch 1, 1 thread, clock
  ``thread``) measured locally with onnxruntime and through a device server on 127.0.0.1 with
  the same protocol: the ratio of medians (remote / local), Kendall tau between the two, and the
  same for a second local session (the noise floor); the overhead per measurement, from one
  interleaved batch and from single-model calls.
- ``throughput``: a batch measured by a pool of one server and of two, wall time ratio; with
  servers whose per-model time is a fixed simulated board time (``--simulate-ms``, sleeping,
  so it holds on a loaded 2-core machine) and with plain CPU-bound servers.
- ``calibration``: leave-one-device-out on NB201's four device columns (HW-NAS-Bench): with
  10, 20 and 50 measured architectures of the held-out device, Kendall tau and the share within
  +-10% on all others, averaged over ``--draws`` random draws, for plain ridge on the one-hot
  encoding and op counts (no transfer), the naive transfer (other devices' latencies, linear),
  and hwnas's transfer (model chosen by leave-one-out on the samples) with and without the
  denoised columns; with the stored (nested cross-validated) estimate and two ceilings: linear
  and boosted-tree fits on 80% of the table (the noise ceiling of the phone columns is
  ``benchmarks/calibration_ceiling.py``).

    OMP_NUM_THREADS=1 python benchmarks/remote_devices.py                       # full size
    OMP_NUM_THREADS=1 python benchmarks/remote_devices.py --models 10 --draws 2  # quick
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwnas.devices import DeviceProfile, load_device  # noqa: E402
from hwnas.profilers.base import SpreadWarning  # noqa: E402
from hwnas.profilers.ort import export_onnx_bytes, measure_onnx_latencies  # noqa: E402

NB201_CSV = REPO.parent / "shared" / "data" / "nb201_cifar10_hw.csv"


# -- servers --------------------------------------------------------------------------------
def start_server(*args: str, name: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "hwnas.remote", "--port", "0", "--name", name, *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    port = int(line.split(" on 127.0.0.1:")[1].split(",")[0])
    url = f"http://127.0.0.1:{port}"
    from hwnas.remote.client import BoardUnreachable, RemoteBoard

    for _ in range(600):
        try:
            RemoteBoard(url, token=None).health()
            return process, url
        except BoardUnreachable:
            time.sleep(0.05)
    raise RuntimeError("server did not answer")


def profile_file(directory: Path, name: str, body: str) -> DeviceProfile:
    path = directory / f"{name}.toml"
    path.write_text(f'name = "{name}"\n{body}')
    return load_device(path)


PROTOCOL = 'threads = 1\nwarmup = 5\nrepeats = {repeats}\nclock = "thread"\n'


# -- part 1: agreement ----------------------------------------------------------------------
def agreement(args: argparse.Namespace, tmp: Path) -> None:
    from hwnas.spaces import make_space

    space = make_space("mobilenet")
    rng = np.random.default_rng(0)
    genotypes = {}
    while len(genotypes) < args.models:
        g = space.sample(rng)
        genotypes[g.key()] = g
    import torch

    torch.manual_seed(0)
    models = [
        export_onnx_bytes(space.build(g, num_classes=10), (3, 32, 32)) for g in genotypes.values()
    ]
    process, url = start_server(name="loopback")
    try:
        protocol = PROTOCOL.format(repeats=args.repeats)
        local = profile_file(tmp, "local", 'runtime = "onnxruntime"\n' + protocol)
        remote = profile_file(
            tmp, "remote", f'runtime = "remote"\nservers = ["{url}"]\n' + protocol
        )
        times = {}
        results = {}
        for label, profile in (("local", local), ("remote", remote), ("local again", local)):
            start = time.perf_counter()
            results[label] = np.array(
                [m.value for m in measure_onnx_latencies(models, profile, (3, 32, 32))]
            )
            times[label] = time.perf_counter() - start
        single = {"local": [], "remote": []}
        for m in models[:10]:
            for label, profile in (("local", local), ("remote", remote)):
                start = time.perf_counter()
                measure_onnx_latencies([m], profile, (3, 32, 32))
                single[label].append(time.perf_counter() - start)
    finally:
        process.terminate()
        process.wait()
    base = results["local"]
    print(f"\n### Agreement: {args.models} mobilenet networks, {args.repeats} timed runs each\n")
    print("| compared with local | median ratio | p10-p90 of ratios | Kendall tau |")
    print("|---|---|---|---|")
    for label in ("remote", "local again"):
        r = results[label] / base
        tau = kendalltau(results[label], base).statistic
        print(
            f"| {label} | {np.median(r):.3f} | {np.percentile(r, 10):.3f}-"
            f"{np.percentile(r, 90):.3f} | {tau:.3f} |"
        )
    batch = (times["remote"] - times["local"]) / args.models * 1000
    calls = (np.median(single["remote"]) - np.median(single["local"])) * 1000
    print(
        f"\nWall time of the interleaved batch: local {times['local']:.1f} s, remote "
        f"{times['remote']:.1f} s: overhead {batch:.1f} ms per model. Single-model calls "
        f"(median of 10): local {np.median(single['local']) * 1000:.0f} ms, remote "
        f"{np.median(single['remote']) * 1000:.0f} ms: overhead {calls:.0f} ms per call. "
        f"Latency range {base.min():.3f}-{base.max():.3f} ms."
    )


# -- part 2: throughput ---------------------------------------------------------------------
def throughput(args: argparse.Namespace, tmp: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    models = [
        export_onnx_bytes(nn.Sequential(nn.Conv2d(3, 16 + i, 3), nn.ReLU()).eval(), (3, 32, 32))
        for i in range(args.batch)
    ]
    print(f"\n### Pool throughput: a batch of {args.batch} models, one server against two\n")
    print("| servers | one (s) | two (s) | two / one |")
    print("|---|---|---|---|")
    for label, extra in (
        (f"simulated board time {args.simulate_ms:.0f} ms per model", args.simulate_ms),
        ("CPU-bound (no simulated time)", 0.0),
    ):
        flags = ("--simulate-ms", str(extra)) if extra else ()
        servers = [start_server(*flags, name=f"b{i}") for i in range(2)]
        try:
            urls = [u for _, u in servers]
            protocol = PROTOCOL.format(repeats=args.repeats)
            one = profile_file(
                tmp, f"one{extra}", f'runtime = "remote"\nservers = ["{urls[0]}"]\n' + protocol
            )
            two = profile_file(
                tmp,
                f"two{extra}",
                f'runtime = "remote"\nservers = {urls!r}\n'.replace("'", '"') + protocol,
            )
            walls = {}
            for name, profile in (("one", one), ("two", two), ("one", one), ("two", two)):
                start = time.perf_counter()
                measure_onnx_latencies(models, profile, (3, 32, 32))
                walls.setdefault(name, []).append(time.perf_counter() - start)
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait()
        w1, w2 = min(walls["one"]), min(walls["two"])
        print(f"| {label} | {w1:.2f} | {w2:.2f} | {w2 / w1:.2f} |")


# -- part 3: calibration --------------------------------------------------------------------
def calibration(args: argparse.Namespace) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from hwnas.profilers.transfer import (
        KnownDevices,
        TransferPredictor,
        architecture_features,
        denoise,
        fit_predict,
        load_known,
        op_counts,
        sample_rows,
    )
    from hwnas.spaces.nb201 import NB201Space
    from hwnas.types import Genotype

    space = NB201Space()
    known = load_known([NB201_CSV], space)
    genotypes = [Genotype("nb201", s) for s in known.specs]
    counts = op_counts(space, genotypes)
    onehot = np.array([space.predictor_features(g)[:30] for g in genotypes], dtype=float)
    names = list(known.columns)
    # Each column denoised once (from the architecture alone); a held-out device's is unused.
    denoised = denoise(known, architecture_features(space, genotypes))

    def score(p: np.ndarray, t: np.ndarray) -> tuple[float, float]:
        return kendalltau(p, t).statistic, float(np.mean(np.abs(p - t) / t <= 0.1))

    rows_out = []
    for n in args.samples:
        for column in names:
            truth = known.columns[column]
            rest = KnownDevices(
                specs=known.specs, columns={c: v for c, v in known.columns.items() if c != column}
            )
            _, others = rest.matrix()
            rest_denoised = denoised[:, [i for i, c in enumerate(names) if c != column]]
            scores = defaultdict(list)
            for draw in range(args.draws):
                rows = sample_rows(len(truth), n, seed=1000 * n + draw)
                mask = np.ones(len(truth), dtype=bool)
                mask[rows] = False
                everything = np.arange(len(truth))
                feats = {"others": others, "counts": counts, "onehot": onehot}
                for kind in ("onehot", "counts", "transfer"):
                    p = fit_predict(kind, rows, truth[rows], everything, **feats)
                    scores[kind].append(score(p[mask], truth[mask]))
                before = TransferPredictor(
                    known=rest, counts=counts, samples=rows, measured=truth[rows], seed=draw
                )
                scores["before"].append(score(before.predict_all()[mask], truth[mask]))
                predictor = TransferPredictor(
                    known=rest,
                    counts=counts,
                    samples=rows,
                    measured=truth[rows],
                    seed=draw,
                    denoised=rest_denoised,
                )
                p = predictor.predict_all()
                scores["hwnas"].append(score(p[mask], truth[mask]))
                f = predictor.report["predictor"]
                scores["stored"].append((f["kendall_tau"], f["within_10"]))
                scores["chosen"].append(predictor.kind)
            rows_out.append((n, column, scores))
            print(f"  done n={n} {column}", file=sys.stderr)
    print(
        f"\n### Calibration by transfer: NB201, leave one device out, mean over {args.draws} "
        "draws (Kendall tau / share within +-10% on all other architectures)\n"
    )
    print(
        "| samples | held-out device | ridge one-hot (no transfer) | op counts (no transfer) | "
        "naive transfer | hwnas, raw columns only | hwnas transfer | hwnas stored estimate | "
        "models chosen |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, column, s in rows_out:
        cells = []
        for kind in ("onehot", "counts", "transfer", "before", "hwnas", "stored"):
            tau = np.nanmean([a for a, _ in s[kind]])
            within = np.mean([b for _, b in s[kind]])
            cells.append(f"{tau:.2f} / {within:.0%}")
        chosen = ", ".join(f"{k} {v}" for k, v in sorted(_count(s["chosen"]).items()))
        print(f"| {n} | {column} | " + " | ".join(cells) + f" | {chosen} |")

    # Ceilings: what any model could reach on this table.
    print("\nCeilings (no model of these features can do much better):\n")
    print("| device | linear on 80% (one-hot + others) | boosted trees on 80% |")
    print("|---|---|---|")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(known.specs))
    train, test = order[: int(0.8 * len(order))], order[int(0.8 * len(order)) :]
    for column in names:
        y = known.columns[column]
        o = np.log(np.stack([known.columns[c] for c in names if c != column], axis=1))
        x = np.hstack([onehot, o])
        lin = LinearRegression().fit(x[train], y[train]).predict(x[test])
        gbr = np.exp(
            HistGradientBoostingRegressor(max_iter=300, random_state=0)
            .fit(x[train], np.log(y[train]))
            .predict(x[test])
        )
        a, b = score(lin, y[test]), score(gbr, y[test])
        print(f"| {column} | {a[0]:.2f} / {a[1]:.0%} | {b[0]:.2f} / {b[1]:.0%} |")


def _count(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for item in items:
        out[item] += 1
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["agreement", "throughput", "calibration"])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--simulate-ms", type=float, default=200.0)
    parser.add_argument("--samples", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; command: {' '.join(sys.argv)}"
    )
    warnings.simplefilter("ignore", SpreadWarning)
    with tempfile.TemporaryDirectory() as tmp:
        if "agreement" in args.parts:
            agreement(args, Path(tmp))
        if "throughput" in args.parts:
            throughput(args, Path(tmp))
    if "calibration" in args.parts:
        calibration(args)


if __name__ == "__main__":
    main()
