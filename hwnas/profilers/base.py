"""The profiler protocol and the timing machinery every latency measurement shares.

A *workload* is one prepared inference (model on the device, input already there, session
built); ``timed()`` runs it once and returns milliseconds. :func:`time_interleaved` warms every
workload up and then runs rounds in which each workload runs once, in a fresh random order:
when a shared machine slows down for a while, every candidate pays alike, so comparisons stay
fair. :func:`timing_measurement` turns the samples into a :class:`Measurement` with the median
and its spread, and flags spreads too wide to trust.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from hwnas.types import Measurement

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "Profiler",
    "SpreadWarning",
    "Workload",
    "drift_corrected",
    "measure_interleaved",
    "pinned_threads",
    "summarize",
    "time_interleaved",
    "timing_measurement",
]


@runtime_checkable
class Profiler(Protocol):
    """Measures one metric of a model; always returns a Measurement with a unit."""

    metric: str
    unit: str

    def measure(self, model: nn.Module, input_shape: Sequence[int]) -> Measurement:
        """The metric for one input of ``input_shape`` (C, H, W); batch from the profile."""
        ...


class Workload(Protocol):
    """One prepared inference on a device."""

    def run(self) -> None:
        """One inference, untimed (may return before a GPU finishes)."""
        ...

    def synchronize(self) -> None:
        """Wait until the device has finished all queued work."""
        ...

    def timed(self) -> float:
        """One inference, timed correctly for the device; milliseconds."""
        ...


class SpreadWarning(UserWarning):
    """A measurement's spread is too wide to trust (a busy or throttling machine)."""


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, p10, p90, mean, min, ``cv`` (std / mean), robust ``rcv`` and ``n``.

    ``rcv`` = 1.4826 * MAD / median: the coefficient of variation a normal distribution with
    the same median absolute deviation would have. Unlike ``cv`` it ignores the rare long
    stalls of a shared machine, which the median ignores too.
    """
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    median = float(np.median(x))
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    mad = float(np.median(np.abs(x - median)))
    return {
        "median": median,
        "p10": float(np.percentile(x, 10)),
        "p90": float(np.percentile(x, 90)),
        "mean": mean,
        "min": float(x.min()),
        "cv": std / mean if mean > 0 else math.nan,
        "rcv": 1.4826 * mad / median if median > 0 else math.nan,
        "n": float(x.size),
    }


@contextlib.contextmanager
def pinned_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads; restore the previous number afterwards."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_interleaved(
    workloads: Sequence[Workload],
    *,
    warmup: int,
    repeats: int,
    seed: int = 0,
    rewarm: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[float]]:
    """Milliseconds of ``repeats`` runs of each workload, interleaved in random order.

    Every workload is warmed up ``warmup`` times first (caches, allocator, lazy
    initialisation, cuDNN / TensorRT autotuning). When several workloads are interleaved, each
    timed run follows ``rewarm`` untimed runs of the same workload (default 1), so that its
    weights are back in the caches as in back-to-back inference, which is what a deployed model
    sees and what a single-model measurement times. ``progress(done, total)`` is called after
    every round.
    """
    rng = np.random.default_rng(seed)
    if rewarm is None:
        rewarm = 1 if len(workloads) > 1 else 0
    for workload in workloads:
        for _ in range(warmup):
            workload.run()
        workload.synchronize()
    samples: list[list[float]] = [[] for _ in workloads]
    for round_ in range(repeats):
        for i in rng.permutation(len(workloads)):
            workload = workloads[i]
            for _ in range(rewarm):
                workload.run()
            if rewarm:
                workload.synchronize()
            samples[i].append(workload.timed())
        if progress is not None:
            progress(round_ + 1, repeats)
    return samples


#: Fewer interleaved workloads than this give too noisy a per-round factor to correct with.
MIN_WORKLOADS_FOR_DRIFT = 8


def drift_corrected(samples: Sequence[Sequence[float]]) -> tuple[list[list[float]], float]:
    """Samples with the common-mode drift of each round divided out, and the drift's spread.

    A busy machine slows down every workload in a round alike. Each round's factor is the
    median, over workloads, of the sample divided by that workload's median; factors are scaled
    to a median of 1, so a steady machine's samples are unchanged. Returns the corrected
    samples (workloads x rounds) and p90 / p10 of the factors (1.0: no drift).
    """
    a = np.asarray(samples, dtype=float)
    rel = a / np.median(a, axis=1, keepdims=True)
    factors = np.median(rel, axis=0)
    factors = factors / np.median(factors)
    spread = float(np.percentile(factors, 90) / np.percentile(factors, 10))
    return (a / factors).tolist(), spread


def measure_interleaved(
    workloads: Sequence[Workload],
    *,
    warmup: int,
    repeats: int,
    device: str | None,
    env: Mapping[str, Any],
    max_cv: float | None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Measurement]:
    """Latency Measurements (ms) of interleaved workloads, drift-corrected when there are
    enough of them (see :func:`drift_corrected`); ``env`` records what was done."""
    samples = time_interleaved(
        workloads, warmup=warmup, repeats=repeats, seed=seed, progress=progress
    )
    env = {**env, "repeats": repeats, "interleaved": len(workloads)}
    if len(workloads) >= MIN_WORKLOADS_FOR_DRIFT and repeats >= 3:
        samples, spread = drift_corrected(samples)
        env["drift_correction"] = "per-round median factor"
        env["drift_p90_p10"] = round(spread, 4)
    return [timing_measurement(s, device=device, env=env, max_cv=max_cv) for s in samples]


def timing_measurement(
    samples: Sequence[float],
    *,
    metric: str = "latency",
    unit: str = "ms",
    device: str | None = None,
    env: Mapping[str, Any] | None = None,
    max_cv: float | None = None,
) -> Measurement:
    """The median of ``samples`` with its spread; warns (and notes in ``env``) when too wide."""
    stats = summarize(samples)
    env = dict(env or {})
    warning = spread_warning(stats, max_cv)
    if warning:
        env["warning"] = warning
        warnings.warn(warning, SpreadWarning, stacklevel=2)
    return Measurement(metric, stats["median"], unit, device=device, stats=stats, env=env)


def spread_warning(stats: Mapping[str, float], max_cv: float | None) -> str | None:
    """A message when the robust CV exceeds ``max_cv``, else None."""
    if max_cv is None or not stats.get("rcv", 0.0) > max_cv:
        return None
    return (
        f"spread too wide to trust: robust CV {stats['rcv']:.1%} > {max_cv:.0%} over "
        f"{int(stats['n'])} runs (p10 {stats['p10']:.3g}, p90 {stats['p90']:.3g}); the machine "
        "is busy or throttling: measure again on a quiet machine or raise repeats"
    )
