"""``hwnas compare`` on two real table runs: table, joint front, cost curves, files, errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hwnas.api import search
from hwnas.cli import app
from hwnas.compare import compare_runs, render_table, write_comparison
from hwnas.objectives.pareto import front_indices
from hwnas.store import RunStore

NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_hw.csv"
OBJECTIVES = ["acc_cifar10:max", "lat_fpga_ms:min"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present (see ../shared/data/README.md)")
    base = tmp_path_factory.mktemp("compare")
    for strategy, seed in (("nsga2", 0), ("random", 1)):
        search(
            space="nb201", strategy=strategy, objectives=OBJECTIVES, benchmark=NB201_CSV,
            budget=40, seed=seed, out=base / strategy,
        )  # fmt: skip
    return base / "nsga2", base / "random"


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_table_joint_front_and_costs(two_runs):
    before = [_digest(d) for d in two_runs]
    comparison = compare_runs(two_runs)
    rows = {r.label: r for r in comparison.rows}
    assert set(rows) == {"nsga2", "random"}
    assert rows["nsga2"].strategy == "nsga2" and rows["random"].strategy == "random"
    assert all(r.evaluations == 40 and r.failed == 0 for r in rows.values())
    assert all(r.device_seconds > 0 and r.wall_seconds > 0 for r in rows.values())
    # The joint front is the front of all trials of both runs together.
    pool = [t for run in comparison.runs for t in run.trials]
    keys = {pool[i].genotype.key() for i in front_indices(pool, comparison.objectives)}
    assert {m.trial.genotype.key() for m in comparison.joint_front} == keys
    for run in comparison.runs:
        own = {t.genotype.key() for t in run.trials}
        expected = sum(m.trial.genotype.key() in own for m in comparison.joint_front)
        assert rows[run.label].joint_members == expected
    assert sum(len(m.runs) for m in comparison.joint_front) == sum(
        r.joint_members for r in rows.values()
    )
    # Cost curves: one point per evaluation, costs never decrease, HV never decreases.
    for curve in comparison.curves:
        assert len(curve.evaluations) == len(curve.hypervolume) == 40
        for values in (curve.wall_seconds, curve.device_hours, curve.hypervolume):
            assert (np.diff(values) >= -1e-12).all()
        assert curve.device_hours[-1] > 0
    # The table's hypervolume is the curve's end: one scaling for both runs.
    assert rows["nsga2"].hypervolume == pytest.approx(comparison.curves[0].hypervolume[-1])
    text = render_table(comparison)
    assert text.splitlines()[0].split()[:3] == ["run", "strategy", "evaluations"]
    for m in comparison.joint_front:
        assert m.found_by() in text and m.trial.genotype.spec in text
    assert [_digest(d) for d in two_runs] == before  # read-only


def test_cli_writes_files_outside_the_runs(two_runs, tmp_path):
    out = tmp_path / "cmp"
    done = CliRunner().invoke(app, ["compare", *map(str, two_runs), "--out", str(out)])
    assert done.exit_code == 0, done.output
    names = {p.name for p in out.iterdir()}
    assert names == {"compare.json", "compare.csv", "compare-cost.png", "compare-joint-front.png"}
    data = json.loads((out / "compare.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["nsga2", "random"]
    assert all(m["found_by"] for m in data["joint_front"])
    assert (out / "compare-cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (out / "compare.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith("run,strategy,evaluations")


def test_errors_are_one_line(two_runs, tmp_path):
    runner = CliRunner()
    one = runner.invoke(app, ["compare", str(two_runs[0])])
    assert one.exit_code == 2 and "at least two" in one.output
    missing = runner.invoke(app, ["compare", str(two_runs[0]), str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a hwnas run" in missing.output
    with pytest.raises(Exception, match="is a compared run"):
        write_comparison(compare_runs(two_runs), two_runs[0])
    other = tmp_path / "other"
    search(
        space="nb201", strategy="random", objectives=["acc_cifar10:max", "lat_pixel3_ms:min"],
        benchmark=NB201_CSV, budget=5, seed=0, out=other,
    )  # fmt: skip
    different = runner.invoke(app, ["compare", str(two_runs[0]), str(other)])
    assert different.exit_code == 2 and "different objectives" in different.output


def test_output_is_not_wrapped_in_a_pipe(two_runs):
    env = {**os.environ, "COLUMNS": "40"}
    done = subprocess.run(
        [sys.executable, "-m", "hwnas.cli", "compare", *map(str, two_runs)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    specs = [line for line in done.stdout.splitlines() if "trial" in line and "|" in line]
    assert specs and all(line.rstrip().endswith("|") for line in specs)


def test_training_outside_trials_counts_as_device_time(two_runs, tmp_path):
    """A supernet trains inside ask(): its events' seconds are cost no trial duration shows."""
    copy = tmp_path / "supernet-like"
    shutil.copytree(two_runs[1], copy)
    before = {r.label: r for r in compare_runs([two_runs[0], copy]).rows}["supernet-like"]
    with RunStore.open(copy) as store:  # what the runner stores from the strategy's events
        store.log_event("supernet_epoch", {"epoch": 0, "seconds": 50.0})
        store.log_event("supernet_epoch", {"epoch": 1, "seconds": 120.0})
    comparison = compare_runs([two_runs[0], copy])
    after = {r.label: r for r in comparison.rows}["supernet-like"]
    assert after.training_seconds == pytest.approx(before.training_seconds + 120.0)
    assert after.device_seconds == pytest.approx(before.device_seconds + 120.0)
    # On the curve, training counts from when it happened: here after the last trial.
    curve = comparison.curves[1]
    assert curve.device_hours[-1] * 3600 == pytest.approx(before.device_seconds)
    assert "2 min 00 s" in render_table(comparison)
