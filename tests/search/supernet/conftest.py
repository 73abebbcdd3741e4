"""Tiny supernets on digits: one torch thread, a private cache, a fast device profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.devices import DeviceProfile, load_device
from hwnas.training.datasets.catalog import load_dataset


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread: None) -> None:
    """Every test module here runs on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture
def fast_cpu(tmp_path: Path) -> DeviceProfile:
    """torch on the CPU with few repeats: for tests that need no precision."""
    path = tmp_path / "fast-cpu.toml"
    path.write_text(
        'runtime = "torch"\ndevice = "cpu"\nthreads = 1\nbatch_size = 1\nwarmup = 2\n'
        'repeats = 5\nclock = "thread"\n'
    )
    return load_device(path)
