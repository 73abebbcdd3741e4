"""Tiny supernets on digits: one torch thread, a private cache, a fast device profile."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from hwnas.devices import DeviceProfile, load_device
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.lut import LatencyTable
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.supernet.tasks import ClassificationTask
from hwnas.training.datasets import load_dataset
from hwnas.training.settings import TrainSettings

#: Two searchable layers of 8 candidates each: 64 architectures, a supernet of 16 blocks.
TINY = {"stages": [[8, 1, 1], [16, 2, 1]], "head_channels": 32}
#: Three layers, the middle one with skip: 8 * 9 * 8 architectures.
SMALL = {"stages": [[8, 1, 1], [16, 2, 2]], "head_channels": 32}
DIGITS = (1, 16, 16)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def build_table(space: MobileNetSpace, profile: DeviceProfile) -> LatencyTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        return LatencyTable.build(space, profile, num_classes=10, input_shape=DIGITS)


def classification_task(space: MobileNetSpace, data, **settings) -> ClassificationTask:
    options = {"batch_size": 32, "data_fraction": 0.3, "lr": 0.05, **settings}
    return ClassificationTask(space=space, data=data, settings=TrainSettings(**options))
