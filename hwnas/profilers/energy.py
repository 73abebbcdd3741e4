"""Energy per inference in millijoules from NVML's energy counter (NVIDIA Volta and newer).

NVML's total-energy counter (mJ since the driver loaded) is read before and after a block of
back-to-back inferences long enough for the counter to advance many times (at least
``min_block_s``); the energy per inference is the difference divided by the inferences. The
figure is the whole board's energy, idle power included, as a battery would see it. Several
blocks give a median and a spread. Without NVML (``pip install 'hwnas[nvml]'``), energy comes
only from table-backed profiles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from torch import nn

from hwnas.devices import DeviceProfile
from hwnas.errors import DeviceError
from hwnas.profilers.base import Workload, timing_measurement
from hwnas.profilers.env import measurement_env
from hwnas.types import Measurement

__all__ = ["EnergyProfiler", "measure_energy", "nvml_energy_counter"]


class nvml_energy_counter:  # lower case: used like a function, in a with statement
    """``with nvml_energy_counter(index) as read: read()`` -> mJ since the driver loaded."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self._nvml: Any = None

    def __enter__(self) -> Any:
        try:
            import pynvml
        except ImportError:
            raise DeviceError(
                "energy on NVIDIA GPUs needs nvidia-ml-py: pip install 'hwnas[nvml]'"
            ) from None
        try:
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as exc:  # noqa: BLE001 - pynvml raises NVMLError subclasses
            raise DeviceError(
                f"NVML's energy counter is not readable on GPU {self.index}: {exc}"
            ) from None
        self._nvml = pynvml
        return lambda: float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))

    def __exit__(self, *exc: object) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()


def measure_energy(
    workload: Workload, *, index: int = 0, blocks: int = 5, min_block_s: float = 0.5
) -> list[float]:
    """Millijoules per inference of ``workload`` on GPU ``index``, one value per block."""
    with nvml_energy_counter(index) as read:
        # Size the blocks from the time per inference so each lasts about min_block_s.
        start = time.perf_counter()
        calls = 0
        while time.perf_counter() - start < 0.1 or calls < 3:
            workload.run()
            workload.synchronize()
            calls += 1
        per_call = (time.perf_counter() - start) / calls
        count = max(10, int(min_block_s / max(per_call, 1e-6)))
        values = []
        for _ in range(blocks):
            before = read()
            for _ in range(count):
                workload.run()
            workload.synchronize()
            values.append((read() - before) / count)
    return values


class EnergyProfiler:
    """``energy`` in mJ per inference (per batch of the profile) on a CUDA profile."""

    metric = "energy"
    unit = "mJ"

    def __init__(self, *, profile: DeviceProfile, blocks: int = 5) -> None:
        if profile.device != "cuda":
            raise DeviceError(
                f"device '{profile.name}' measures no energy: NVML energy needs a CUDA profile; "
                "a table-backed profile with energy_mj entries gives it for other devices"
            )
        self.profile = profile
        self.blocks = blocks

    def measure(self, model: nn.Module, input_shape: Sequence[int]) -> Measurement:
        workload: Workload
        if self.profile.runtime == "onnxruntime":
            from hwnas.profilers.ort import OrtWorkload, export_onnx_bytes

            onnx = export_onnx_bytes(model, input_shape, batch_size=self.profile.batch_size)
            workload = OrtWorkload(onnx, input_shape, profile=self.profile)
        else:
            from hwnas.profilers.latency import TorchWorkload

            workload = TorchWorkload(model, input_shape, profile=self.profile)
        for _ in range(self.profile.warmup):
            workload.run()
        workload.synchronize()
        values = measure_energy(workload, index=self.profile.device_index, blocks=self.blocks)
        env = measurement_env(self.profile, input_shape, method="nvml total energy counter")
        return timing_measurement(
            values,
            metric=self.metric,
            unit=self.unit,
            device=self.profile.torch_device,
            env=env,
            max_cv=self.profile.max_cv,
        )
