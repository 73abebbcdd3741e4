"""The command line, through typer's CliRunner and as a real subprocess."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwnas._version import __version__
from hwnas.cli import app

runner = CliRunner()


def hwnas_cmd(*args: str) -> list[str]:
    """The installed console script (as a user runs it), else the module."""
    script = Path(sys.executable).with_name("hwnas")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "hwnas.cli", *args]


def nb201_args(csv: Path, out: Path, budget: int = 60, strategy: str = "nsga2") -> list[str]:
    return [
        "search", "--space", "nb201", "--benchmark", str(csv),
        "--objective", "acc_cifar10:max", "--objective", "lat_fpga_ms:min",
        "--strategy", strategy, "--budget", str(budget), "--seed", "0", "--out", str(out),
    ]  # fmt: skip


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout
    for command in ["search", "resume", "front", "spaces", "strategies", "genotype"]:
        help_text = runner.invoke(app, [command, "--help"]).stdout
        assert "Example" in help_text, command


def test_search_front_and_resume_through_cli_runner(tmp_path, nb201_csv):
    out = tmp_path / "nb201-fpga"
    result = runner.invoke(app, nb201_args(nb201_csv, out, budget=40))
    assert result.exit_code == 0, result.stderr
    assert "Pareto front" in result.stdout and "lat_fpga_ms (min, ms)" in result.stdout
    resumed = runner.invoke(app, ["resume", str(out), "--budget", "80"])
    assert resumed.exit_code == 0, resumed.stderr
    with sqlite3.connect(out / "hwnas.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM trials").fetchone() == (80, 80)
    front = runner.invoke(app, ["front", str(out), "--json"])
    assert front.exit_code == 0
    assert json.loads(front.stdout)["counts"]["complete"] == 80


def test_macro_example_as_subprocess(tmp_path, macro_json):
    out = tmp_path / "m"
    proc = subprocess.run(
        hwnas_cmd(
            "search",
            "--space",
            "macro",
            "--benchmark",
            str(macro_json),
            "--objective",
            "mean_acc:max",
            "--objective",
            "params:min",
            "--strategy",
            "random",
            "--budget",
            "100",
            "--out",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "front.csv").read_text().startswith("trial,genotype,mean_acc,params")


def test_spaces_strategies_and_genotype_listings():
    spaces = runner.invoke(app, ["spaces"]).stdout
    assert "nb201" in spaces and "15,625" in spaces and "6,561" in spaces
    assert "nsga2" in runner.invoke(app, ["strategies"]).stdout
    described = runner.invoke(app, ["genotype", "macro:02012100"])
    assert described.exit_code == 0 and "890,666" in described.stdout


def _wait_for_complete_trials(db_path: Path, n: int, proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the search ended before it could be killed"
        if db_path.exists():
            try:
                with sqlite3.connect(db_path, timeout=1) as db:
                    done = db.execute(
                        "SELECT COUNT(*) FROM trials WHERE state='complete'"
                    ).fetchone()[0]
                if done >= n:
                    return done
            except sqlite3.OperationalError:
                pass
        time.sleep(0.02)
    raise AssertionError("the search did not make progress")


def _resume_completes(out: Path, budget: int, before: dict, *args: str) -> None:
    """`hwnas resume` finishes the budget: every trial complete, none twice, none of the
    ``before`` rows changed."""
    resumed = subprocess.run(
        hwnas_cmd("resume", str(out), "--budget", str(budget), *args),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(out / "hwnas.db") as db:
        total, distinct, done = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT key), SUM(state='complete') FROM trials"
        ).fetchone()
    assert total == distinct == done == budget
    after = _trial_rows(out / "hwnas.db")
    assert all(after[n] == row for n, row in before.items()), "a completed trial changed"


def _trial_rows(db_path: Path) -> dict[int, tuple]:
    with sqlite3.connect(db_path) as db:
        return {
            r[0]: r[1:]
            for r in db.execute(
                "SELECT t.number, t.key, m.metric, m.value FROM trials t JOIN measurements m"
                " ON m.trial = t.number WHERE t.state = 'complete' ORDER BY t.number, m.metric"
            )
        }


@pytest.mark.parametrize(("strategy", "budget"), [("random", 4000), ("nsga2", 1200)])
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path, nb201_csv, strategy, budget):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        hwnas_cmd(*nb201_args(nb201_csv, out, budget=budget, strategy=strategy)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_complete_trials(out / "hwnas.db", 300, proc, timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = _trial_rows(out / "hwnas.db")
    assert 300 <= len({k[0] for k in before.values()}) < budget

    _resume_completes(out, budget, before)

    # Determinism: the killed-and-resumed run proposes exactly what an uninterrupted run does.
    straight = tmp_path / "straight"
    subprocess.run(
        hwnas_cmd(*nb201_args(nb201_csv, straight, budget=budget, strategy=strategy)),
        check=True,
        capture_output=True,
        timeout=300,
    )
    with sqlite3.connect(out / "hwnas.db") as a, sqlite3.connect(straight / "hwnas.db") as b:
        keys = "SELECT key FROM trials ORDER BY number"
        assert a.execute(keys).fetchall() == b.execute(keys).fetchall()


def _bad(args, tmp_path, match):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert match in lines[0], lines[0]
    return lines[0]


def _search(csv, out, *extra, objectives=("acc_cifar10:max", "lat_fpga_ms:min"), budget="20"):
    args = [
        "search",
        "--space",
        "nb201",
        "--benchmark",
        str(csv),
        "--budget",
        budget,
        "--out",
        str(out),
    ]
    for o in objectives:
        args += ["--objective", o]
    return args + list(extra)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: [*a, "--strategy", "bogus"], "unknown strategy 'bogus'"),
        (
            lambda a: [x if x != "nb201" else "nb2O1" for x in a],
            "unknown space 'nb2O1' (did you mean 'nb201'?)",
        ),
        (lambda a: [*a, "--constraint", "lat_fpga_ms<<3"], "cannot read constraint"),
        (
            lambda a: [*a, "--constraint", "lat_fpga_ms<=3MB"],
            "does not fit a metric measured in 'ms'",
        ),
        (lambda a: [*a, "--constraint", "arch_idx<=3ms"], "unit of 'arch_idx' is unknown"),
        (lambda a: [*a, "--strategy", "nsga2", "--strategy-option", "pop=3"], "has no option pop"),
        (lambda a: [*a, "--space-option", "channels=banana"], "bad options for space 'nb201'"),
        (lambda a: [*a, "--space-option", "width=3"], "space 'nb201' has no option width"),
        (lambda a: [*a, "--time", "soon"], "cannot read duration"),
    ],
)
def test_bad_search_input(tmp_path, nb201_csv, change, match):
    out = tmp_path / "run"
    _bad(change(_search(nb201_csv, out)), tmp_path, match)
    assert not out.exists(), "a bad input left something in the run directory"


def test_bad_objectives_budget_and_files(tmp_path, nb201_csv, macro_json):
    out = tmp_path / "run"
    _bad(
        _search(nb201_csv, out, objectives=("acc_cifar11:max",)),
        tmp_path,
        "unknown metric 'acc_cifar11' (did you mean 'acc_cifar10'?)",
    )
    _bad(_search(nb201_csv, out, objectives=("acc:sideways",)), tmp_path, "use :min or :max")
    _bad(_search(nb201_csv, out, budget="0"), tmp_path, "budget must be a positive number")
    _bad(_search(nb201_csv, out, budget="-5"), tmp_path, "budget must be a positive number")
    _bad(_search(tmp_path / "missing.csv", out), tmp_path, "does not exist")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"02012100": {"mean_acc": 89.1')
    _bad(_search(corrupt, out), tmp_path, "is corrupt")
    _bad(_search(macro_json, out, objectives=("mean_acc",)), tmp_path, "does not fit space 'nb201'")
    binary = tmp_path / "table.csv"
    binary.write_bytes(os.urandom(4096))
    _bad(_search(binary, out), tmp_path, "benchmark file")
    _bad(
        ["search", "--space", "nb201", "--budget", "5", "--out", str(out), "--objective", "x"],
        tmp_path,
        "--benchmark",
    )
    _bad(["genotype", "macro:0201210x"], tmp_path, "contains 'x'")
    _bad(["genotype", "mobilenet:ir_k9_e6"], tmp_path, "mobilenet")
    _bad(["genotype", "02012100"], tmp_path, "write SPACE:SPEC")
    assert not out.exists()


def test_out_naming_an_existing_run_points_to_resume(tmp_path, nb201_csv):
    out = tmp_path / "run"
    assert runner.invoke(app, _search(nb201_csv, out)).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    _bad(_search(nb201_csv, out), tmp_path, f"hwnas resume {out}")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    _bad(["resume", str(tmp_path / "nothing")], tmp_path, "is not a hwnas run")
    _bad(["resume", str(out), "--budget", "0"], tmp_path, "budget must be a positive number")


def test_bad_input_as_a_real_subprocess(tmp_path, nb201_csv):
    proc = subprocess.run(
        hwnas_cmd(*_search(nb201_csv, tmp_path / "r", "--strategy", "nope")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown strategy 'nope'") and proc.stderr.count("\n") == 1
