"""Output is never hard-wrapped: paths and genotypes stay whole in a pipe and in a terminal of
any width (a real pseudo-terminal with its window size set), and a pipe gets plain text."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_helpers import in_pty

NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_hw.csv"


def _hwnas() -> list[str]:
    return [sys.executable, "-m", "hwnas.cli"]


def _env(columns: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return env


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> Path:
    """A table run in a directory whose path is longer than 80 columns."""
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    nb201 = NB201_CSV
    base = tmp_path_factory.mktemp("a-rather-long-directory-name-for-a-run-" + "x" * 30)
    out = base / "nested" / "runs" / "nb201-with-a-long-name"
    args = "search --space nb201 --objective acc_cifar10:max --objective lat_fpga_ms:min"
    args += " --strategy random --budget 40"
    done = subprocess.run(
        [*_hwnas(), *args.split(), "--benchmark", str(nb201), "--out", str(out)],
        capture_output=True,
        text=True,
        env=_env(None),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(str(out)) > 80
    assert "40 complete, 0 failed" in done.stdout  # the line the quickstart test greps for
    return out


def _check_whole(text: str, run: Path) -> None:
    specs = [r["genotype"] for r in csv.DictReader((run / "front.csv").open())]
    assert specs
    lines = text.splitlines()
    for spec in specs:
        assert any(spec in line for line in lines), f"genotype {spec} split or cut"
    for path in (run / "front.csv", run / "front.json"):
        assert any(str(path) in line for line in lines), f"path {path} split"
    assert any(f"run {run}: 40 complete, 0 failed" in line for line in lines)


@pytest.mark.parametrize("columns", [None, 40, 80, 200])
def test_pipe_output_is_never_wrapped(long_run, columns):
    done = subprocess.run(
        [*_hwnas(), "front", str(long_run)],
        capture_output=True,
        text=True,
        env=_env(columns),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout  # plain text in a pipe
    _check_whole(done.stdout, long_run)


@pytest.mark.parametrize("columns", [40, 80, 250])
def test_terminal_output_keeps_paths_and_genotypes_whole(long_run, columns, tmp_path):
    text = in_pty([*_hwnas(), "front", str(long_run)], columns, tmp_path)
    _check_whole(text, long_run)
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    # Only soft-wrapped single lines (paths, genotypes) may exceed the terminal; the table fits.
    assert all(len(line) <= columns for line in table_lines)
