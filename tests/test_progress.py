"""Logs without a terminal: plain progress lines in a pipe, what ended a run, what a resume
added, and a Ctrl-C (a real SIGINT) that leaves no lock file behind."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_helpers import in_pty

from hwnas.progress import SearchProgress, clock, eta

NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_hw.csv"
TABLE = "--space nb201 --objective acc_cifar10:max --objective lat_fpga_ms:min --strategy random"
LINE = re.compile(
    r"^progress (\d+)/(\d+) \(\d+%\): front \d+, normalised hypervolume [01]\.\d{4}, "
    r"failed \d+, elapsed \d+:\d\d:\d\d, ETA (\?|\d+:\d\d:\d\d)$"
)


@pytest.fixture
def table() -> Path:
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    return NB201_CSV


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return env


def _hwnas(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hwnas.cli", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
    )


def test_a_pipe_gets_plain_progress_lines_then_the_session(tmp_path, table):
    out = tmp_path / "run"
    done = _hwnas("search", *TABLE.split(), "--benchmark", str(table), "--budget", "40",
                  "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [m for m in map(LINE.match, done.stdout.splitlines()) if m]
    counts = [int(m.group(1)) for m in lines]
    # One line at the start and one at every tenth of the budget, the last at 40/40.
    assert counts == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    assert all(int(m.group(2)) == 40 for m in lines)
    assert "this session added 40 trials; stopped because the budget of 40" in done.stdout
    assert not (out / "hwnas.lock").exists()

    resumed = _hwnas("resume", str(out), "--budget", "55")
    assert resumed.returncode == 0, resumed.stderr
    assert "this session added 15 trials" in resumed.stdout
    assert "run " + str(out) + ": 55 complete, 0 failed" in resumed.stdout


def test_the_time_budget_says_it_ended_the_run(tmp_path, table):
    done = _hwnas("search", *TABLE.split(), "--benchmark", str(table), "--budget", "1000000",
                  "--time", "1s", "--out", str(tmp_path / "run"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "stopped because the time budget (--time 1 s) ran out before the budget" in done.stdout


def test_sigint_stops_the_run_without_a_stale_lock_file(tmp_path, table):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hwnas.cli",
            "search",
            *TABLE.split(),
            "--benchmark",
            str(table),
            "--budget",
            "10000000",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        first = proc.stdout.readline()  # the first progress line: the loop holds the run now
        assert LINE.match(first.rstrip("\n")), first + proc.stderr.read()
        assert (out / "hwnas.lock").exists()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert not (out / "hwnas.lock").exists()
    resumed = _hwnas("resume", str(out), "--budget", "1")  # not "in use by another process"
    assert "in use" not in resumed.stderr


def test_progress_object_without_terminal_writes_lines_at_each_tenth():
    class Monitor:
        front_size, hypervolume = 3, 0.5

        def refresh(self, force: bool = False) -> None:
            pass

    sink = io.StringIO()
    with SearchProgress(
        enabled=True, total=20, done=0, monitor=Monitor(), lines=sink, bar=False
    ) as bar:
        for done in range(1, 21):
            bar.update(done, failed=0)
        bar.finish(20, failed=0)
    counts = [int(LINE.match(line).group(1)) for line in sink.getvalue().splitlines()]
    assert counts == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]


def test_eta_and_clock():
    assert clock(3725) == "1:02:05"
    assert eta(elapsed=10.0, done_here=5, remaining=10, time_left=None) == pytest.approx(20.0)
    assert eta(elapsed=10.0, done_here=5, remaining=10, time_left=3.0) == pytest.approx(3.0)
    assert eta(elapsed=1.0, done_here=0, remaining=10, time_left=None) is None


def test_a_terminal_gets_a_bar_with_an_eta(tmp_path, table):
    args = [sys.executable, "-m", "hwnas.cli", "search", *TABLE.split()]
    args += ["--benchmark", str(table), "--budget", "30", "--out", str(tmp_path / "run")]
    text = in_pty(args, 120, tmp_path)
    assert "search" in text and "30/30" in text and "ETA" in text
    assert "normalised hypervolume" in text
    assert not any(LINE.match(line) for line in text.splitlines())  # no plain lines here
    assert "this session added 30 trials" in text
