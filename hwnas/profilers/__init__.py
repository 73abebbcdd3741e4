"""Profilers: hardware cost of a network as Measurements with units.

:data:`PROFILERS` names every profiler (looked up lazily, so listing them imports no torch);
:func:`make_profiler` builds one for a device profile.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from hwnas.registry import Registry

if TYPE_CHECKING:
    from hwnas.devices import DeviceProfile
    from hwnas.profilers.base import Profiler

__all__ = ["PROFILERS", "make_profiler"]

PROFILERS: Registry[type] = Registry("profiler")
PROFILERS.add("latency", "hwnas.profilers.latency:TorchLatencyProfiler", "ms, torch eager")
PROFILERS.add("ort_latency", "hwnas.profilers.ort:OrtLatencyProfiler", "ms, onnxruntime")
PROFILERS.add("macs", "hwnas.profilers.flops:MacsProfiler", "MAC, conv + matmul")
PROFILERS.add("params", "hwnas.profilers.flops:ParamsProfiler", "count of parameters")
PROFILERS.add("size", "hwnas.profilers.flops:SizeProfiler", "B, fp32 weights")
PROFILERS.add("onnx_size", "hwnas.profilers.ort:OnnxSizeProfiler", "B, exported ONNX file")
PROFILERS.add("peak_memory", "hwnas.profilers.memory:PeakMemoryProfiler", "B, weights + live")
PROFILERS.add("energy", "hwnas.profilers.energy:EnergyProfiler", "mJ, NVML energy counter")


def make_profiler(name: str, profile: DeviceProfile) -> Profiler:
    """Profiler ``name`` configured for ``profile`` (those that need no device ignore it)."""
    cls = PROFILERS.get(name)
    if "profile" in inspect.signature(cls).parameters:
        return cls(profile=profile)
    return cls()
