"""The `hwnas devices lut`, `hwnas devices calibrate` and `hwnas profile` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwnas.cli import app

STAGES = ["--space-option", "stages=[[16,1,1],[24,2,1]]"]


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_profile_json_has_every_metric_with_unit(fast_cpu) -> None:
    result = _invoke(
        "profile", "torchvision:resnet18", "--device", fast_cpu.source,
        "--input-shape", "3,32,32", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    units = {k: m["unit"] for k, m in data["measurements"].items()}
    assert units == {
        "latency": "ms",
        "macs": "MAC",
        "params": "count",
        "size": "B",
        "onnx_size": "B",
        "peak_memory": "B",
    }
    latency = data["measurements"]["latency"]
    assert {"median", "p10", "p90", "cv", "n"} <= set(latency["stats"])
    assert latency["env"]["input_shape"] == [3, 32, 32]
    assert data["measurements"]["params"]["value"] == 11689512
    assert "convention" in data["measurements"]["macs"]["env"]


def test_profile_table_genotype_and_onnx(fast_ort, tmp_path: Path) -> None:
    result = _invoke("profile", "macro:02012100", "--device", fast_ort.source, "-m", "latency")
    assert result.exit_code == 0, result.output
    assert "macro:02012100" in result.output and "latency" in result.output
    assert "thread(s)" in result.output  # the environment line
    from hwnas.profilers.ort import export_onnx_bytes
    from hwnas.spaces.macro import MacroSpace

    space = MacroSpace()
    path = tmp_path / "m.onnx"
    model = space.build(space.parse("02012100"), num_classes=10)
    path.write_bytes(export_onnx_bytes(model, space.input_shape))
    result = _invoke("profile", str(path), "--device", fast_ort.source, "--json")
    assert result.exit_code == 0, result.output
    measured = json.loads(result.output)["measurements"]
    assert set(measured) == {"latency", "params", "size", "onnx_size"}
    # The exporter folds BatchNorm into the convolutions, so the file holds fewer weights.
    params = measured["params"]["value"]
    assert 0 < params < sum(p.numel() for p in model.parameters())
    assert measured["size"]["value"] == 4 * params


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["profile", "torchvision:resnet81"], "did you mean 'resnet18'"),
        (["profile", "foo:bar"], "torchvision:NAME"),
        (["profile", "missing.onnx", "--device", "ort-cpu"], "does not exist"),
        (["profile", "macro:0201", "--device", "cpu"], "8 digits"),
        (["profile", "macro:02012100", "--device", "cpu", "-m", "speed"], "unknown metric"),
        (["devices", "lut", "--space", "nb201"], "--latency measured"),
        (["devices", "calibrate", "--samples", "3"], "at least 10"),
    ],
)
def test_user_errors_are_one_line(args: list[str], words: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1


def test_onnx_file_needs_onnxruntime_device(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(b"")
    result = _invoke("profile", str(path), "--device", "cpu-eager")
    assert result.exit_code == 2 and "onnxruntime devices only" in result.output


def test_lut_then_calibrate(fast_cpu, _private_cache: Path) -> None:
    result = _invoke("devices", "lut", "--device", fast_cpu.source, *STAGES, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "20 entries" in result.output and "fixed costs" in result.output
    tables = list((_private_cache / "lut").glob("lut-fast-cpu-mobilenet-*.json"))
    assert len(tables) == 1
    again = _invoke("devices", "lut", "--device", fast_cpu.source, *STAGES, "--no-progress")
    assert "cached" in again.output
    result = _invoke(
        "devices", "calibrate", "--device", fast_cpu.source, *STAGES,
        "--samples", "12", "--repeats", "3", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for words in ("held-out", "latency table sum", "learned predictor", "Kendall tau"):
        assert words in result.output
    assert len(list((_private_cache / "lut").glob("predictor-fast-cpu-*.json"))) == 1


def test_every_help_has_an_example() -> None:
    for args in (["devices"], ["devices", "lut"], ["devices", "calibrate"], ["profile"]):
        result = _invoke(*args, "--help")
        assert result.exit_code == 0 and "hwnas " + args[0] in result.output.split("Example")[1]


@pytest.mark.gpu
def test_profile_on_gpu() -> None:
    result = _invoke("profile", "torchvision:resnet18", "--device", "gpu", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["measurements"]
    assert (
        data["latency"]["device"] == "cuda:0" and data["latency"]["env"]["timer"] == "cuda events"
    )
    assert data["peak_memory"]["env"]["method"] == "cuda allocator"
