"""Every registered profiler returns a Measurement with a unit, on a real torch model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.hardware import availability
from hwnas.profilers import PROFILERS, make_profiler
from hwnas.profilers.base import Profiler
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.types import Measurement

UNITS = {
    "latency": "ms",
    "ort_latency": "ms",
    "macs": "MAC",
    "params": "count",
    "size": "B",
    "onnx_size": "B",
    "peak_memory": "B",
    "energy": "mJ",
}


def test_every_profiler_has_a_known_unit() -> None:
    assert set(PROFILERS.names()) == set(UNITS)


@pytest.mark.filterwarnings("ignore::hwnas.profilers.base.SpreadWarning")
@pytest.mark.parametrize("name", PROFILERS.names())
def test_profiler_returns_measurement_with_unit(name: str, fast_cpu, fast_ort) -> None:
    profile = fast_ort if name == "ort_latency" else fast_cpu
    if name == "energy":
        pytest.skip("needs an NVIDIA GPU with NVML (see test_energy_on_gpu)")
    space = MobileNetSpace(stages=[[16, 1, 1], [24, 2, 1]])
    model = space.build(space.sample(np.random.default_rng(0)), num_classes=10)
    profiler = make_profiler(name, profile)
    assert isinstance(profiler, Profiler)
    result = profiler.measure(model, space.input_shape)
    assert isinstance(result, Measurement)
    assert result.unit == UNITS[name] == profiler.unit
    assert result.metric == profiler.metric
    assert math.isfinite(result.value) and result.value > 0


@pytest.mark.gpu
def test_energy_on_gpu() -> None:
    from hwnas.devices import load_device

    gpu = load_device("gpu")
    if not availability(gpu).energy:
        pytest.skip("NVML's energy counter is not available")
    space = MobileNetSpace()
    model = space.build(space.sample(np.random.default_rng(0)), num_classes=10)
    result = make_profiler("energy", gpu).measure(model, space.input_shape)
    assert result.unit == "mJ" and result.value > 0 and result.stats["n"] >= 3
