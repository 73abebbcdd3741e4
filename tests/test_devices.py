"""Device profiles: built-ins, user files, clear errors, availability and fingerprints."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.devices import builtin_names, device_argument, list_devices, load_device
from hwnas.errors import DeviceError
from hwnas.hardware import availability, fingerprint, require_available


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _profile(tmp_path: Path, text: str, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_builtin_profiles_cover_the_issue() -> None:
    names = builtin_names()
    assert {"cpu", "gpu", "ort-cpu", "ort-gpu"} <= set(names)
    profiles = {p.name: p for p in list_devices()}
    # The default CPU target is the deployed file (ONNX in onnxruntime); eager PyTorch by name.
    assert profiles["cpu"].runtime == "onnxruntime" and profiles["cpu"].device == "cpu"
    assert profiles["cpu"].threads == 1 and profiles["cpu"].batch_size == 1
    assert profiles["cpu-eager"].runtime == "torch" and profiles["cpu-eager"].device == "cpu"
    assert profiles["gpu"].device == "cuda" and profiles["gpu"].torch_device == "cuda:0"
    assert profiles["ort-cpu"].providers == ("CPUExecutionProvider",)
    assert profiles["ort-gpu"].providers[0] == "CUDAExecutionProvider"
    for p in profiles.values():
        assert p.warmup >= 1 and p.repeats >= 10 and p.threads >= 1 and p.batch_size >= 1
        assert device_argument(p) == p.name


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, hwnas.devices as d, hwnas.hardware as h; d.list_devices(); "
        "h.availability(d.load_device('cpu')); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_user_profile_by_path(tmp_path: Path) -> None:
    path = _profile(
        tmp_path,
        'runtime = "onnxruntime"\nproviders = ["cpu"]\nthreads = 2\nbatch_size = 4\n'
        "input_shape = [3, 64, 64]\nwarmup = 1\nrepeats = 3\nmax_cv = 0.1\n",
    )
    profile = load_device(path)
    assert profile.name == "mine"  # from the file name
    assert profile.providers == ("CPUExecutionProvider",)
    assert (profile.threads, profile.batch_size, profile.input_shape) == (2, 4, (3, 64, 64))
    assert device_argument(profile) == str(path.resolve())


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ('runtime = "torch"\nthread = 2\n', "thread", "did you mean 'threads'"),
        ("threads = 'two'\n", "threads", "integer"),
        ("repeats = 0\n", "repeats", "must be greater than or equal to 1"),
        ('runtime = "tflite"\n', "runtime", "'torch', 'onnxruntime', 'remote' or 'table'"),
        ('runtime = "remote"\n', "servers", "is required for runtime 'remote'"),
        ('servers = ["http://10.0.0.7:8470"]\n', "servers", "only for runtime 'remote'"),
        ('runtime = "remote"\nservers = ["board"]\n', "servers", "write http://HOST:PORT"),
        ('runtime = "remote"\nservers = ["b:1"]\ntimeout = 0\n', "timeout", "greater than 0"),
        ('device = "tpu"\n', "device", "'cpu' or 'cuda'"),
        ('providers = ["cpu"]\n', "providers", "only for runtime 'onnxruntime'"),
        ('runtime = "onnxruntime"\nproviders = ["quantum"]\n', "providers", "quantum"),
        ('runtime = "onnxruntime"\nproviders = ["cuda"]\n', "providers", 'device = "cuda"'),
        ("input_shape = [32, 32]\n", "input_shape", "[channels, height, width]"),
        ('clock = "thread"\nthreads = 2\n', "clock", "single-threaded"),
        ('clock = "sundial"\n', "clock", "'wall' or 'thread'"),
        ('runtime = "table"\n', "table", "required"),
        ("max_cv = -1\n", "max_cv", "positive"),
    ],
)
def test_invalid_profile_names_file_and_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    path = _profile(tmp_path, text, name="broken")
    with pytest.raises(DeviceError) as info:
        load_device(path)
    message = str(info.value)
    assert "broken.toml" in message and f"'{field}'" in message and words in message
    assert "\n" not in message


def test_unreadable_and_unknown_profiles(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="not valid TOML"):
        load_device(_profile(tmp_path, "threads = = 1\n"))
    with pytest.raises(DeviceError, match="does not exist"):
        load_device(tmp_path / "missing.toml")
    with pytest.raises(DeviceError, match="did you mean 'cpu'"):
        load_device("cpuu")


def test_availability_here() -> None:
    cpu = availability(load_device("cpu"))
    assert cpu.usable and cpu.reason == ""
    assert availability(load_device("ort-cpu")).usable
    # TensorRT is usable exactly where CUDA works and onnxruntime has its provider.
    import onnxruntime
    import torch

    profile = load_device("ort-trt")
    trt = availability(profile)
    expected = torch.cuda.is_available() and set(profile.providers) <= set(
        onnxruntime.get_available_providers()
    )
    assert trt.usable == expected
    if not trt.usable:
        assert "TensorRT" in trt.reason or "CUDA" in trt.reason


@pytest.mark.skipif("_cuda()")
def test_gpu_without_cuda_is_a_clear_error() -> None:
    gpu = load_device("gpu")
    state = availability(gpu)
    assert not state.usable and "CUDA is not available" in state.reason
    with pytest.raises(DeviceError) as info:
        require_available(gpu)
    assert "'gpu' is not usable here" in str(info.value) and "\n" not in str(info.value)


def test_table_profile_needs_its_file(tmp_path: Path) -> None:
    path = _profile(tmp_path, 'runtime = "table"\ntable = "phone.json"\n', name="phone")
    profile = load_device(path)
    assert profile.table_path() == tmp_path / "phone.json"
    state = availability(profile)
    assert not state.usable and "phone.json" in state.reason


def test_fingerprint_is_stable_and_tracks_what_matters() -> None:
    cpu = load_device("cpu")
    assert fingerprint(cpu) == fingerprint(load_device("cpu"))
    assert len(fingerprint(cpu)) == 16
    others = {
        fingerprint(replace(cpu, threads=2)),
        fingerprint(replace(cpu, batch_size=8)),
        fingerprint(replace(cpu, clock="wall")),
        fingerprint(load_device("cpu-eager")),
    }
    assert fingerprint(cpu) not in others and len(others) == 4
    # Warm-up, repeats and the description do not change latency, so not the cache key either.
    assert fingerprint(replace(cpu, repeats=99, description="x")) == fingerprint(cpu)


def test_cli_lists_devices_with_reasons() -> None:
    result = CliRunner().invoke(app, ["devices", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["cpu"]["usable"] is True
    if not _cuda():
        assert rows["gpu"]["usable"] is False and "CUDA" in rows["gpu"]["reason"]
    table = CliRunner().invoke(app, ["devices"])
    assert table.exit_code == 0 and "ort-cpu" in table.output and "usable" in table.output


@pytest.mark.skipif("_cuda()")
def test_cli_gpu_without_cuda_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["profile", "torchvision:resnet18", "--device", "gpu"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: device 'gpu' is not usable here")


def test_cli_invalid_profile_names_file_and_field(tmp_path: Path) -> None:
    path = _profile(tmp_path, "warmup = -3\n", name="bad")
    result = CliRunner().invoke(app, ["profile", "macro:02012100", "--device", str(path)])
    assert result.exit_code == 2
    assert "bad.toml" in result.output and "'warmup'" in result.output
