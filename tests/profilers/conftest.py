"""Fast device profiles for tests (few repeats), one torch thread, and a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.devices import DeviceProfile, load_device


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Latency tables and predictors go to the cache; never the user's.
    cache = tmp_path / "cache"
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread: None) -> None:
    """Every test module here runs on one thread (see tests/conftest.py)."""


def write_profile(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


FAST = """
runtime = "{runtime}"
device = "cpu"
threads = 1
batch_size = 1
warmup = 2
repeats = {repeats}
clock = "thread"
"""


@pytest.fixture
def fast_cpu(tmp_path: Path) -> DeviceProfile:
    """torch on the CPU, 2 warm-up runs and 7 timed runs: for tests that need no precision."""
    path = write_profile(tmp_path, "fast-cpu", FAST.format(runtime="torch", repeats=7))
    return load_device(path)


@pytest.fixture
def fast_ort(tmp_path: Path) -> DeviceProfile:
    text = FAST.format(runtime="onnxruntime", repeats=7) + 'providers = ["cpu"]\n'
    return load_device(write_profile(tmp_path, "fast-ort", text))
