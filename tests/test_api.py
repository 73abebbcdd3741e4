"""End-to-end searches on the real benchmark tables through the Python API."""

import csv
import json
import sqlite3

import pytest

import hwnas
from hwnas.api import resume
from hwnas.config import loads_toml
from hwnas.results import open_run
from hwnas.store import RunStore
from hwnas.types import TrialState

NB201 = dict(space="nb201", objectives=["acc_cifar10:max", "lat_fpga_ms:min"])


def _specs(result):
    return [t.genotype.spec for t in result.trials]


def test_nsga2_on_nb201_writes_run_directory(tmp_path, nb201_csv):
    out = tmp_path / "run"
    result = hwnas.run_search(**NB201, benchmark=nb201_csv, strategy="nsga2", budget=120, out=out)
    assert len(result.trials) == 120
    assert all(t.state is TrialState.COMPLETE for t in result.trials)
    assert len(set(_specs(result))) == 120, "duplicates were evaluated"
    assert {p.name for p in out.iterdir()} >= {"hwnas.db", "config.toml", "front.csv", "front.json"}
    config = loads_toml((out / "config.toml").read_text())
    assert config["strategy"] == "nsga2" and config["budget"] == 120
    rows = list(csv.DictReader((out / "front.csv").open()))
    assert list(rows[0]) == ["trial", "genotype", "acc_cifar10", "lat_fpga_ms"]
    assert len(rows) == len(result.front.members) >= 2
    data = json.loads((out / "front.json").read_text())
    assert data["objectives"][1] == {"metric": "lat_fpga_ms", "direction": "min", "unit": "ms"}
    assert data["knee"] in {m["trial"] for m in data["members"]}
    assert 0 < result.hypervolume <= 1.0
    # The store is plain SQLite: every measurement with its unit.
    with sqlite3.connect(out / "hwnas.db") as db:
        units = {r[0] for r in db.execute("SELECT DISTINCT unit FROM measurements")}
    assert units == {"%", "ms"}


def test_front_is_non_dominated_and_respects_constraints(tmp_path, nb201_csv):
    result = hwnas.run_search(
        **NB201,
        benchmark=nb201_csv,
        strategy="random",
        budget=150,
        constraints=["lat_fpga_ms<=4ms"],
        out=tmp_path / "r",
    )
    front = result.front.members
    assert front and all(t.value("lat_fpga_ms") <= 4.0 for t in front)
    feasible = [t for t in result.trials if t.value("lat_fpga_ms") <= 4.0]
    for f in front:
        for t in feasible:
            dominates = t.value("acc_cifar10") >= f.value("acc_cifar10") and t.value(
                "lat_fpga_ms"
            ) <= f.value("lat_fpga_ms")
            strictly = t.value("acc_cifar10") > f.value("acc_cifar10") or t.value(
                "lat_fpga_ms"
            ) < f.value("lat_fpga_ms")
            assert not (dominates and strictly)


@pytest.mark.parametrize("strategy", ["random", "nsga2"])
def test_same_seed_same_trials(tmp_path, nb201_csv, strategy):
    runs = [
        hwnas.run_search(
            **NB201,
            benchmark=nb201_csv,
            strategy=strategy,
            budget=60,
            seed=s,
            out=tmp_path / f"{i}",
        )
        for i, s in enumerate([5, 5, 6])
    ]
    assert _specs(runs[0]) == _specs(runs[1])
    assert _specs(runs[0]) != _specs(runs[2])


@pytest.mark.parametrize("strategy", ["random", "nsga2"])
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, nb201_csv, strategy):
    straight = hwnas.run_search(
        **NB201, benchmark=nb201_csv, strategy=strategy, budget=90, seed=1, out=tmp_path / "a"
    )
    first = hwnas.run_search(
        **NB201, benchmark=nb201_csv, strategy=strategy, budget=37, seed=1, out=tmp_path / "b"
    )
    assert len(first.trials) == 37
    resumed = resume(tmp_path / "b", budget=90)
    assert _specs(resumed) == _specs(straight)
    assert [t.measurements for t in resumed.trials[:37]] == [t.measurements for t in first.trials]
    assert loads_toml((tmp_path / "b" / "config.toml").read_text())["budget"] == 90


def test_macro_with_params_column_and_random_search(tmp_path, macro_json):
    result = hwnas.run_search(
        space="macro",
        benchmark=macro_json,
        objectives=["mean_acc:max", "params:min"],
        strategy="random",
        budget=100,
        out=tmp_path / "m",
    )
    assert len(result.trials) == 100
    # params comes from the table (the table takes precedence over hwnas's own profilers).
    assert result.trials[0].measurements["params"].device.startswith("table:")
    assert result.front.units["params"] == "count"


def test_profiled_metric_next_to_table_metric(tmp_path, nb201_csv):
    """Objectives missing from the table come from hwnas's profilers (here MACs)."""
    result = hwnas.run_search(
        space="nb201",
        benchmark=nb201_csv,
        objectives=["acc_cifar10:max", "flops"],
        strategy="random",
        budget=6,
        out=tmp_path / "r",
    )
    assert [o.metric for o in result.objectives] == ["acc_cifar10", "macs"]
    macs = result.trials[0].measurements["macs"]
    assert macs.unit == "MAC" and macs.value > 1e6 and "convention" in macs.env


def test_missing_architectures_fail_their_trial_and_the_search_goes_on(tmp_path, nb201_csv):
    partial = tmp_path / "partial.csv"
    lines = nb201_csv.read_text().splitlines()
    partial.write_text("\n".join(lines[:3001]) + "\n")  # a fifth of the space
    result = hwnas.run_search(
        **NB201, benchmark=partial, strategy="random", budget=40, out=tmp_path / "r"
    )
    states = [t.state for t in result.trials]
    assert len(states) == 40
    assert TrialState.FAILED in states and TrialState.COMPLETE in states
    failed = next(t for t in result.trials if t.state is TrialState.FAILED)
    assert "is not in benchmark 'partial.csv'" in failed.error
    assert all(t.state is TrialState.COMPLETE for t in result.front.members)


def test_time_budget_stops_the_search(tmp_path, nb201_csv):
    result = hwnas.run_search(
        **NB201, benchmark=nb201_csv, strategy="random", time_budget=0.3, out=tmp_path / "r"
    )
    assert result.outcome.stopped_by == "time"
    assert 0 < len([t for t in result.trials if t.state.finished]) < 15625


def test_random_search_exhausts_a_space_exactly(tmp_path, macro_json):
    result = hwnas.run_search(
        space="macro",
        benchmark=macro_json,
        objectives=["mean_acc:max", "params:min"],
        strategy="random",
        budget=7000,
        out=tmp_path / "all",
    )
    assert result.outcome.stopped_by == "exhausted"
    assert len({t.genotype.spec for t in result.trials}) == len(result.trials) == 6561


def test_open_run_reads_without_the_lock(tmp_path, nb201_csv):
    hwnas.run_search(**NB201, benchmark=nb201_csv, strategy="random", budget=10, out=tmp_path / "r")
    with RunStore.open(tmp_path / "r"):
        assert len(open_run(tmp_path / "r").trials) == 10
