"""DeviceProvider: the device's metrics in the evaluator, from a run's config."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import hwnas
from hwnas.config import RunConfig
from hwnas.errors import ConfigError, DeviceError
from hwnas.evaluate.evaluator import Evaluator
from hwnas.evaluate.providers import build_providers
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.lut import LatencyTable, table_path
from hwnas.profilers.provider import DeviceProvider
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.types import Candidate

STAGES = [[16, 1, 1], [24, 2, 1]]


def _config(device: str, **profiling) -> RunConfig:
    return RunConfig(
        space="mobilenet",
        strategy="random",
        objectives=["latency"],
        device=device,
        space_options={"stages": STAGES},
        profiling=dict(profiling),
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture
def space() -> MobileNetSpace:
    return MobileNetSpace(stages=STAGES)


def test_measured_metrics(space, fast_cpu) -> None:
    provider = DeviceProvider(
        space=space, profile=fast_cpu, num_classes=10, input_shape=space.input_shape
    )
    assert provider.units() == {"latency": "ms", "peak_memory": "B", "onnx_size": "B"}
    assert provider.resource == "cpu" and provider.exclusive and not provider.cheap
    candidate = Candidate(space.sample(np.random.default_rng(0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpreadWarning)  # the provider keeps it in env only
        results = provider.evaluate(candidate, ["latency", "peak_memory", "onnx_size"])
    assert {m: r.unit for m, r in results.items()} == provider.units()
    assert results["latency"].device == "cpu" and results["latency"].stats["n"] == 7
    assert results["peak_memory"].env["method"] == "liveness"
    assert results["onnx_size"].value > 4 * 1000


def test_interleaved_batch(space, fast_ort) -> None:
    provider = DeviceProvider(
        space=space, profile=fast_ort, num_classes=10, input_shape=space.input_shape
    )
    light, heavy = space.parse("skip-ir_k3_e1"), space.parse("ir_k5_e6-ir_k5_e6")
    fast, slow = provider.measure_latencies([light, heavy])
    assert slow.value > fast.value and fast.env["interleaved"] == 2


def test_built_by_the_evaluator_from_config() -> None:
    config = _config("cpu")
    space = MobileNetSpace(stages=STAGES)
    providers = build_providers(config, space)
    device = [p for p in providers if isinstance(p, DeviceProvider)]
    assert len(device) == 1 and device[0].profile.name == "cpu"
    evaluator = Evaluator(providers, ["latency", "params"])
    assert evaluator.units() == {"latency": "ms", "params": "count"}


def test_unknown_latency_source() -> None:
    with pytest.raises(ConfigError, match="measured, lut, predictor"):
        build_providers(_config("cpu", latency="guess"), MobileNetSpace(stages=STAGES))


def test_lut_and_predictor_need_their_files(space, fast_cpu) -> None:
    with pytest.raises(DeviceError, match="hwnas devices lut --device cpu --space mobilenet"):
        build_providers(_config("cpu", latency="lut"), space)
    with pytest.raises(DeviceError) as info:
        build_providers(_config("cpu", latency="predictor"), space)
    assert "--space-option 'stages=[[16,1,1],[24,2,1]]'" in str(info.value)


def test_latency_from_a_cached_table(space, fast_cpu) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        table = LatencyTable.build(space, fast_cpu, num_classes=10)
    table.save(table_path(fast_cpu, space, num_classes=10))
    provider = DeviceProvider(
        space=space, profile=fast_cpu, num_classes=10, input_shape=(3, 32, 32), latency="lut"
    )
    assert provider.cheap and provider.resource is None and not provider.exclusive
    g = space.parse("ir_k3_e6-ir_k5_e3")
    m = provider.evaluate(Candidate(g), ["latency"])["latency"]
    assert m.value == pytest.approx(table.predict(g)) and m.env["method"] == "lut"


@pytest.mark.skipif("_cuda()")
def test_search_on_missing_gpu_fails_before_writing(macro_json, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(DeviceError, match="'gpu' is not usable here"):
        hwnas.run_search(
            space="macro",
            benchmark=macro_json,
            objectives=["mean_acc:max", "latency"],
            device="gpu",
            budget=2,
            out=out,
        )
    assert not out.exists()


def test_table_device_in_a_search(space, fast_cpu, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        LatencyTable.build(space, fast_cpu, num_classes=10).save(tmp_path / "board.json")
    profile = tmp_path / "board.toml"
    profile.write_text('runtime = "table"\ntable = "board.json"\n')
    config = _config(str(profile))
    provider = next(p for p in build_providers(config, space) if isinstance(p, DeviceProvider))
    assert provider.latency_mode == "lut" and provider.resource is None and provider.cheap
    assert "energy" not in provider.units()
    with pytest.raises(ConfigError, match="lookup table"):
        build_providers(_config(str(profile), latency="measured"), space)


@pytest.mark.gpu
def test_gpu_provider() -> None:
    space = MobileNetSpace(stages=STAGES)
    provider = DeviceProvider.from_config(
        _config("gpu"), space, num_classes=10, input_shape=(3, 32, 32)
    )
    assert provider.resource == "cuda:0" and provider.exclusive
    results = provider.evaluate(Candidate(space.sample(np.random.default_rng(0))), ["latency"])
    assert results["latency"].device == "cuda:0"
