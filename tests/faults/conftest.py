"""Fixtures of the fault-injection tests: small real runs to damage, files to protect."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fault_helpers import MACRO_JSON, cli


@pytest.fixture(scope="session")
def macro_table() -> Path:
    assert MACRO_JSON.is_file(), f"{MACRO_JSON} is missing (see ../shared/data/README.md)"
    return MACRO_JSON


@pytest.fixture(scope="session")
def table_run_template(tmp_path_factory: pytest.TempPathFactory, macro_table: Path) -> Path:
    """A finished 8-trial run on the NAS-Bench-Macro table (made once, copied per test)."""
    out = tmp_path_factory.mktemp("template") / "run"
    result = cli(
        "search", "--space", "macro", "--benchmark", macro_table, "-o", "mean_acc:max",
        "-o", "params:min", "--budget", 8, "--seed", 0, "--out", out,
    )  # fmt: skip
    assert result.code == 0, result.err
    return out


@pytest.fixture
def table_run(tmp_path: Path, table_run_template: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(table_run_template, run, symlinks=True)
    return run


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files outside every run directory that no hwnas command may change."""
    root = tmp_path / "outside"
    (root / "victim_dir").mkdir(parents=True)
    (root / "victim.txt").write_bytes(b"precious, not hwnas's\n")
    (root / "victim_dir" / "keep.txt").write_bytes(b"also precious\n")
    return root
