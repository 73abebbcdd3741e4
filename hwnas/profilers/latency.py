"""Latency of torch models on the local CPU or a CUDA GPU (eager mode, inference mode).

CPU: ``perf_counter_ns`` around each forward with the profile's threads pinned. CUDA: the
input already on the device, CUDA events recorded around each forward and a synchronize before
reading them, because a GPU call returns before the GPU has finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from hwnas.devices import DeviceProfile
from hwnas.profilers.base import measure_interleaved, pinned_threads
from hwnas.profilers.env import measurement_env
from hwnas.types import Measurement

__all__ = ["TorchLatencyProfiler", "TorchWorkload", "measure_torch_latencies"]


_TIMERS = {"wall": "perf_counter", "thread": "thread_time"}


class TorchWorkload:
    """A model in eval mode on the profile's device with its input already there."""

    def __init__(
        self, model: nn.Module, input_shape: Sequence[int], *, profile: DeviceProfile
    ) -> None:
        self.device = torch.device(profile.torch_device)
        self.model = model.eval().to(self.device)
        self.input = torch.randn(profile.batch_size, *input_shape, device=self.device)
        self._cuda = self.device.type == "cuda"
        self._clock = time.thread_time_ns if profile.clock == "thread" else time.perf_counter_ns
        if self._cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def run(self) -> None:
        with torch.inference_mode():
            self.model(self.input)

    def synchronize(self) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)

    def timed(self) -> float:
        if self._cuda:
            with torch.inference_mode():
                self._start.record()
                self.model(self.input)
                self._end.record()
            self._end.synchronize()
            return float(self._start.elapsed_time(self._end))
        with torch.inference_mode():
            start = self._clock()
            self.model(self.input)
            return (self._clock() - start) / 1e6


def measure_torch_latencies(
    models: Sequence[nn.Module],
    input_shape: Sequence[int],
    *,
    profile: DeviceProfile,
    repeats: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Measurement]:
    """Latency (ms per batch) of each model, measured interleaved; see ``time_interleaved``."""
    timer = "cuda events" if profile.device == "cuda" else _TIMERS[profile.clock]
    env = measurement_env(profile, input_shape, timer=timer)
    with pinned_threads(profile.threads):
        workloads = [TorchWorkload(m, input_shape, profile=profile) for m in models]
        return measure_interleaved(
            workloads,
            warmup=profile.warmup,
            repeats=profile.repeats if repeats is None else repeats,
            device=profile.torch_device,
            env=env,
            max_cv=profile.max_cv,
            seed=seed,
            progress=progress,
        )


class TorchLatencyProfiler:
    """``latency`` in ms per batch with torch eager on the profile's device."""

    metric = "latency"
    unit = "ms"

    def __init__(self, *, profile: DeviceProfile, seed: int = 0) -> None:
        self.profile = profile
        self.seed = seed

    def measure(self, model: nn.Module, input_shape: Sequence[int]) -> Measurement:
        return self.measure_many([model], input_shape)[0]

    def measure_many(
        self, models: Sequence[nn.Module], input_shape: Sequence[int]
    ) -> list[Measurement]:
        """Interleaved measurements: fair comparisons on a machine whose speed drifts."""
        return measure_torch_latencies(models, input_shape, profile=self.profile, seed=self.seed)
