"""Shared fixtures: the public benchmark tables beside the checkout, small real data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NB201_CSV = SHARED_DATA / "nb201_cifar10_hw.csv"
MACRO_JSON = SHARED_DATA / "nas-bench-macro_cifar10.json"


@pytest.fixture
def nb201_csv() -> Path:
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present (see ../shared/data/README.md)")
    return NB201_CSV


@pytest.fixture
def macro_json() -> Path:
    if not MACRO_JSON.is_file():
        pytest.skip(f"{MACRO_JSON} is not present (see ../shared/data/README.md)")
    return MACRO_JSON


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
    """Skip `gpu` tests when CUDA is absent (only if torch is already needed anyway)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in gpu_items:
            item.add_marker(skip)
