"""Real SIGKILLs: a resumed run never overshoots its budget, and an export killed at any
moment never leaves a JSON record describing other files (or temporaries for long)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import cli

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")


def _hwnas(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "hwnas.cli", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _states(db: Path) -> dict[str, int]:
    try:
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = connection.execute("SELECT state, COUNT(*) FROM trials GROUP BY state")
            return dict(rows.fetchall())
        finally:
            connection.close()
    except sqlite3.Error:
        return {}


def test_resume_after_a_kill_with_queued_trials_stops_at_the_budget(tmp_path, macro_table):
    """NSGA-II queues a whole generation at once; killed with trials queued, a resume with a
    budget below finished + queued ends with exactly that many finished trials."""
    out = tmp_path / "run"
    process = _hwnas(
        "search", "--space", "macro", "--benchmark", macro_table, "-o", "mean_acc:max",
        "-o", "params:min", "--strategy", "nsga2", "--strategy-option", "population_size=20",
        "--budget", 400, "--out", out,
    )  # fmt: skip
    try:
        while process.poll() is None:
            states = _states(out / "hwnas.db")
            if states.get("queued", 0) >= 10 and states.get("complete", 0) >= 40:
                break
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the search ended before it could be killed"
    states = _states(out / "hwnas.db")
    finished = states.get("complete", 0) + states.get("failed", 0)
    assert states.get("queued", 0) + states.get("running", 0) >= 2
    result = cli("resume", out, "--budget", finished + 1)
    assert result.code == 0, result.err
    after = _states(out / "hwnas.db")
    assert after.get("complete", 0) + after.get("failed", 0) == finished + 1


def test_resume_refuses_a_budget_below_the_finished_trials(table_run):
    before = {p.name: p.read_bytes() for p in table_run.iterdir() if p.is_file()}
    assert "at least 8" in cli("resume", table_run, "--budget", 5).one_error_line()
    after = {p.name: p.read_bytes() for p in table_run.iterdir() if p.is_file()}
    assert after == before


def _consistent(exports: Path) -> None:
    """Every export record describes the file beside it (same bytes), or a failure."""
    for record in exports.glob("*.json"):
        data = json.loads(record.read_text())
        onnx = data.get("onnx") or {}
        if onnx.get("file"):
            model = exports / onnx["file"]
            assert model.is_file(), f"{record.name} describes a missing {model.name}"
            assert hashlib.sha256(model.read_bytes()).hexdigest() == onnx["sha256"]


@pytest.mark.slow
def test_an_export_killed_at_any_moment_stays_consistent(table_run):
    """Exports of the knee with --int8 (each replaces the files of the one before), killed
    at growing delays: at every point the records describe the files beside them."""
    exports = table_run / "exports"
    assert cli("export", table_run).code == 0
    _consistent(exports)
    kills = 0
    for delay in (0.5, 1.5, 3.0, 4.5):
        process = _hwnas("export", table_run, "--int8")
        time.sleep(delay)  # where the kill lands does not matter: every moment must be safe
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        kills += process.returncode == -signal.SIGKILL
        _consistent(exports)
    assert kills >= 1
    assert cli("export", table_run).code == 0  # the next export removes stale temporaries
    _consistent(exports)
    assert not [p for p in exports.iterdir() if p.name.startswith((".tmp-", ".hwnas-tmp-"))]
