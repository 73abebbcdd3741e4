"""Training throughput (images/s) of hwnas's trainer for three `mobilenet` sizes.

CPU: fp32, data in memory, NCHW vs channels_last (the default). GPU (when CUDA is present): fp32 vs bf16 autocast + channels_last,
and data kept on the GPU vs read through a DataLoader (pinned memory, worker processes), with
the GPU's utilisation sampled while it trains (NVML through torch, else nvidia-smi).

Images are synthetic uint8 CIFAR-shaped tensors (3x32x32, 10 classes): throughput does not
depend on pixel values, and the benchmark needs no download. Each configuration is warmed up
(one short training), then timed by the trainer itself (``TrainResult.train_time``: the
optimisation steps, synchronised on CUDA; BatchNorm re-estimation is switched off here).

    python benchmarks/train_throughput.py                   # CPU, and the GPU when present
    python benchmarks/train_throughput.py --smoke           # a few steps, to check it runs
    python benchmarks/train_throughput.py --device cuda --steps 200 --gpu-batch-size 256
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass

import torch

from hwnas.profilers.cheap import count_macs, count_params
from hwnas.spaces import make_space
from hwnas.training.datasets.splits import DatasetSplits, TensorSplit
from hwnas.training.trainer import TrainSettings, train

SIZES = {"small": "ir_k3_e1", "medium": "ir_k3_e3", "large": "ir_k5_e6"}


@dataclass
class Row:
    device: str
    size: str
    params: int
    macs: int
    batch_size: int
    precision: str
    channels_last: bool
    loader: str
    images_per_second: float
    gpu_util: float | None


def synthetic(n: int, *, seed: int = 0) -> DatasetSplits:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    split = TensorSplit(images, labels)
    val = TensorSplit(images[:256], labels[:256])
    return DatasetSplits(
        name="synthetic-cifar", train=split, val=val, test=val, num_classes=10,
        input_shape=(3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        crop_padding=4, flip=True,
    )  # fmt: skip


class UtilSampler:
    """GPU utilisation (%) sampled every 100 ms in a thread while the block runs."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._read = self._reader()

    def _reader(self):
        try:
            torch.cuda.utilization(self.device)
            return lambda: float(torch.cuda.utilization(self.device))
        except Exception:  # noqa: BLE001 - NVML bindings are optional
            pass
        if shutil.which("nvidia-smi"):
            index = self.device.index or 0

            def smi() -> float:
                out = subprocess.run(
                    ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                     "--format=csv,noheader,nounits"],
                    capture_output=True, text=True, timeout=5,
                )  # fmt: skip
                return float(out.stdout.strip().splitlines()[0])

            return smi
        return None

    def __enter__(self) -> UtilSampler:
        if self._read is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.samples.append(self._read())
            except Exception:  # noqa: BLE001
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._read is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        # The first samples see the start-up; NVML averages over its own window anyway.
        return statistics.fmean(self.samples[2:] or self.samples) if self.samples else None


def measure(
    size: str, device: str, settings: TrainSettings, data: DatasetSplits, steps: int
) -> Row:
    space = make_space("mobilenet")
    genotype = space.parse("-".join([SIZES[size]] * space.num_layers))
    steps_per_epoch = len(data.train) // settings.batch_size
    torch.manual_seed(0)
    model = space.build(genotype, num_classes=10, in_channels=3)
    params, macs = count_params(model), count_macs(model, (3, 32, 32))
    warm = settings.replace(epochs=min(10, steps) / steps_per_epoch)
    train(model, data, warm, device=device, seed=0)
    timed = settings.replace(epochs=steps / steps_per_epoch)
    dev = torch.device(device)
    sampler = UtilSampler(dev) if dev.type == "cuda" else None
    if sampler is not None:
        with sampler:
            result = train(model, data, timed, device=device, seed=1)
    else:
        result = train(model, data, timed, device=device, seed=1)
    return Row(
        device=device, size=size, params=params, macs=macs, batch_size=result.batch_size,
        precision=result.precision, channels_last=result.channels_last, loader=result.loader,
        images_per_second=result.images_per_second,
        gpu_util=sampler.mean if sampler is not None else None,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per configuration")
    parser.add_argument("--cpu-batch-size", type=int, default=64)
    parser.add_argument("--gpu-batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch default)")
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers (GPU rows)")
    parser.add_argument("--smoke", action="store_true", help="3 steps, small data: a quick check")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = 3 if args.smoke else args.steps
    sizes = args.sizes.split(",")
    base = TrainSettings(bn_images=0, augment=True)
    rows: list[Row] = []
    if args.device in ("all", "cpu"):
        bs = 16 if args.smoke else args.cpu_batch_size
        data = synthetic(bs * 8)
        for size in sizes:
            for channels_last in (False, True):  # hwnas's default is channels_last
                settings = base.replace(batch_size=bs, channels_last=channels_last)
                rows.append(measure(size, "cpu", settings, data, steps))
                print_row(rows[-1])
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        bs = 32 if args.smoke else args.gpu_batch_size
        data = synthetic(bs * 40)
        variants = [
            dict(precision="fp32", channels_last=False, loader="memory"),
            dict(precision="bf16", channels_last=True, loader="memory"),
            dict(precision="fp32", channels_last=False, loader="dataloader"),
            dict(precision="bf16", channels_last=True, loader="dataloader"),
        ]
        for size in sizes:
            for variant in variants:
                settings = base.replace(batch_size=bs, workers=args.workers, **variant)
                rows.append(measure(size, "cuda", settings, data, steps))
                print_row(rows[-1])
    elif args.device == "cuda":
        raise SystemExit("CUDA is not available on this machine")
    print()
    print(markdown(rows))
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
        + f", {time.strftime('%Y-%m-%d')}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.__dict__ for r in rows], f, indent=2)


def print_row(row: Row) -> None:
    util = f", GPU {row.gpu_util:.0f}%" if row.gpu_util is not None else ""
    print(
        f"{row.device} {row.size:<6} bs {row.batch_size} {row.precision}"
        f"{' channels_last' if row.channels_last else ''} {row.loader}: "
        f"{row.images_per_second:,.0f} images/s{util}",
        flush=True,
    )


def markdown(rows: list[Row]) -> str:
    lines = [
        "| device | size | params | MMACs | batch | precision | layout | data | images/s | GPU util |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        util = f"{r.gpu_util:.0f}%" if r.gpu_util is not None else "-"
        lines.append(
            f"| {r.device} | {r.size} | {r.params / 1e6:.2f} M | {r.macs / 1e6:.1f} | "
            f"{r.batch_size} | {r.precision} | {'channels_last' if r.channels_last else 'NCHW'} | "
            f"{'on device' if r.loader == 'memory' else 'DataLoader'} | "
            f"{r.images_per_second:,.0f} | {util} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
