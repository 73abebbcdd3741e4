"""Latency with torch and onnxruntime: orderings and ratios, never absolute times."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from hwnas.errors import DeviceError
from hwnas.profilers.base import (
    SpreadWarning,
    drift_corrected,
    pinned_threads,
    summarize,
    time_interleaved,
    timing_measurement,
)
from hwnas.profilers.cheap import count_macs
from hwnas.profilers.latency import TorchLatencyProfiler
from hwnas.profilers.ort import (
    OrtLatencyProfiler,
    export_onnx_bytes,
    measure_onnx_latencies,
    measure_onnx_latency,
)
from hwnas.spaces.mobilenet import MobileNetSpace


def _convnet(width: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    return nn.Sequential(*layers).eval()


SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def small_and_large() -> tuple[nn.Module, nn.Module]:
    small, large = _convnet(16), _convnet(46)
    ratio = count_macs(large, SHAPE) / count_macs(small, SHAPE)
    assert 7.5 < ratio < 8.5  # the "8x the MACs"
    return small, large


def test_summary_statistics() -> None:
    stats = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["median"] == 3.0 and stats["n"] == 5 and stats["min"] == 1.0
    assert stats["p10"] < stats["median"] < stats["p90"]
    assert stats["rcv"] == pytest.approx(1.4826 * 1.0 / 3.0)
    assert stats["cv"] > 1  # the outlier inflates the plain CV, not the robust one


def test_wide_spread_warns_and_is_recorded() -> None:
    with pytest.warns(SpreadWarning, match="spread too wide"):
        m = timing_measurement([1.0, 1.5, 2.0, 2.5, 3.0], max_cv=0.05, env={"device": "x"})
    assert "robust CV" in m.env["warning"] and m.value == 2.0 and m.unit == "ms"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = timing_measurement([1.0, 1.0, 1.01, 1.0], max_cv=0.05)
    assert "warning" not in quiet.env


def test_drift_correction_removes_common_slowdowns_only() -> None:
    rng = np.random.default_rng(0)
    base = np.array([1.0, 2.0, 5.0, 0.5, 3.0, 8.0, 1.5, 4.0])
    steady = base[:, None] * (1 + 0.01 * rng.standard_normal((8, 12)))
    corrected, spread = drift_corrected(steady)
    np.testing.assert_allclose(np.median(corrected, axis=1), np.median(steady, axis=1), rtol=0.02)
    # Every workload 1.6x slower in rounds 3 and 7 (another process): the medians ignore it
    # either way, but the spread of each workload's samples shrinks back.
    drifting = steady.copy()
    drifting[:, [3, 7]] *= 1.6
    corrected, spread = drift_corrected(drifting)
    assert spread > 1.0
    np.testing.assert_allclose(corrected, steady, rtol=0.05)


class _Recorder:
    """A workload that records the order it runs in (no device involved)."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def run(self) -> None:
        self.log.append(self.name)

    def synchronize(self) -> None:
        pass

    def timed(self) -> float:
        self.log.append(self.name.upper())
        return 1.0


def test_interleaving_warms_up_then_alternates_in_random_order() -> None:
    log: list[str] = []
    workloads = [_Recorder(n, log) for n in "abc"]
    samples = time_interleaved(workloads, warmup=2, repeats=6, seed=1)
    assert [len(s) for s in samples] == [6, 6, 6]
    assert log[:6] == ["a", "a", "b", "b", "c", "c"]
    timed = [x for x in log[6:] if x.isupper()]
    rounds = ["".join(timed[i : i + 3]) for i in range(0, 18, 3)]
    assert all(sorted(r) == ["A", "B", "C"] for r in rounds)
    assert len(set(rounds)) > 1  # the order changes between rounds
    # Each timed run follows an untimed run of the same workload (back-to-back caches).
    rest = log[6:]
    assert all(rest[i].lower() == rest[i + 1].lower() for i in range(0, len(rest), 2))


def test_threads_are_pinned_and_restored() -> None:
    before = torch.get_num_threads()
    with pinned_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_torch_latency_orders_models_by_cost(small_and_large, fast_cpu) -> None:
    small, large = small_and_large
    profile = replace(fast_cpu, repeats=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        fast, slow = TorchLatencyProfiler(profile=profile).measure_many([small, large], SHAPE)
    assert slow.value > 2 * fast.value
    for m in (fast, slow):
        assert m.unit == "ms" and m.device == "cpu"
        assert {"median", "p10", "p90", "cv", "rcv", "n"} <= set(m.stats)
        assert m.stats["n"] == 9 and m.stats["p10"] <= m.value <= m.stats["p90"]
        for key in ("device", "cpu", "torch", "threads", "batch_size", "input_shape"):
            assert key in m.env
        assert m.env["input_shape"] == list(SHAPE) and m.env["threads"] == 1


def test_onnx_export_is_faithful_and_in_memory(small_and_large) -> None:
    small, _ = small_and_large
    data = export_onnx_bytes(small, SHAPE, batch_size=2)
    onnx.checker.check_model(onnx.load_from_string(data))
    x = torch.randn(2, *SHAPE)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, small(x).numpy(), rtol=1e-4, atol=1e-5)
    dynamic = export_onnx_bytes(small, SHAPE, dynamic_batch=True)
    dims = onnx.load_from_string(dynamic).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == list(SHAPE)


def test_onnxruntime_latency_orders_models_by_cost(small_and_large, fast_ort, tmp_path) -> None:
    small, large = small_and_large
    exports = [export_onnx_bytes(m, SHAPE) for m in (small, large)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        fast, slow = measure_onnx_latencies(exports, replace(fast_ort, repeats=9), SHAPE)
    assert slow.value > 2 * fast.value
    assert fast.env["providers"] == ["CPUExecutionProvider"] and "onnxruntime" in fast.env
    # A file on disk works the same; its static input shape needs no --input-shape.
    path = tmp_path / "small.onnx"
    path.write_bytes(exports[0])
    from_file = measure_onnx_latency(path, fast_ort)
    assert from_file.unit == "ms" and from_file.env["input_shape"] == list(SHAPE)
    with pytest.raises(DeviceError, match="input shape"):
        measure_onnx_latency(path, fast_ort, (3, 64, 64))


def test_mobilenet_profiler_exports_and_measures(fast_ort) -> None:
    space = MobileNetSpace()
    model = space.build(space.sample(np.random.default_rng(0)), num_classes=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        m = OrtLatencyProfiler(profile=fast_ort).measure(model, space.input_shape)
    assert m.unit == "ms" and m.value > 0 and m.env["timer"] == "thread_time"


@pytest.mark.gpu
def test_cuda_latency_orders_models_by_cost() -> None:
    from hwnas.devices import load_device

    gpu = load_device("gpu")
    small, large = _convnet(32), _convnet(91)  # bigger: a GPU hides small differences
    fast, slow = TorchLatencyProfiler(profile=gpu).measure_many([small, large], (3, 128, 128))
    assert slow.value > fast.value
    assert fast.device == "cuda:0" and fast.env["timer"] == "cuda events" and "gpu" in fast.env


@pytest.mark.gpu
def test_onnxruntime_cuda_latency_orders_models_by_cost() -> None:
    from hwnas.devices import load_device
    from hwnas.hardware import availability

    profile = load_device("ort-gpu")
    if not availability(profile).usable:
        pytest.skip(availability(profile).reason)
    exports = [export_onnx_bytes(_convnet(w), (3, 128, 128)) for w in (32, 91)]
    fast, slow = measure_onnx_latencies(exports, profile, (3, 128, 128))
    assert slow.value > fast.value and fast.device == "cuda:0"
