"""Shared fixtures: the public benchmark tables beside the checkout, small real data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NB201_CSV = SHARED_DATA / "nb201_cifar10_hw.csv"
MACRO_JSON = SHARED_DATA / "nas-bench-macro_cifar10.json"


def _shared_table(path: Path) -> Path:
    """The table, or a skip on a developer's machine without it; under CI (``CI`` set) a
    missing table is a failure, so that a broken checkout cannot pass by skipping."""
    if not path.is_file():
        message = f"{path} is not present (see ../shared/data/README.md)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the tests that read it")
        pytest.skip(message)
    return path


@pytest.fixture
def nb201_csv() -> Path:
    return _shared_table(NB201_CSV)


@pytest.fixture
def macro_json() -> Path:
    return _shared_table(MACRO_JSON)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Runs a module's torch work on one thread; opt in with ``usefixtures("one_thread")``.

    Batch-1 forwards of small networks are no faster on more threads, OpenMP threads slow
    down by 100x when another process holds a core, and a fixed count keeps CPU results
    repeatable on a shared machine.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests run wherever CUDA works and are skipped (never deselected) elsewhere."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in gpu_items:
            item.add_marker(skip)
