"""The process-pool executor: real worker processes, real SQLite, real crashes."""

import functools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from executor_helpers import intervals, overlaps, search, sleepy_evaluator
from test_cli import (
    _resume_completes,
    _trial_rows,
    _wait_for_complete_trials,
    hwnas_cmd,
    nb201_args,
)

import hwnas
from hwnas.errors import ConfigError
from hwnas.executors.process import ProcessExecutor
from hwnas.executors.settings import ExecutorSettings
from hwnas.objectives.base import parse_objective
from hwnas.search.nsga2 import NSGA2Search
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.types import Measurement, Trial, TrialState

NB201 = dict(space="nb201", objectives=["acc_cifar10:max", "lat_fpga_ms:min"])


@pytest.fixture(autouse=True)
def private_gates(tmp_path, monkeypatch):
    """Gates of this test only (workers inherit the environment), not the machine's."""
    monkeypatch.setenv("HWNAS_GATE_DIR", str(tmp_path / "gates"))


def _keys(trials):
    return sorted(t.candidate.key() for t in trials)


@pytest.mark.parametrize(
    ("strategy", "options"),
    [("random", {}), ("nsga2", {"population_size": 8, "steady_state": False})],
)
def test_process_executor_proposes_the_trials_of_the_local_executor(
    tmp_path, nb201_csv, strategy, options
):
    common = dict(
        **NB201, benchmark=nb201_csv, strategy=strategy, strategy_options=options, budget=40, seed=4
    )
    local = hwnas.run_search(**common, out=tmp_path / "local")
    pooled = hwnas.run_search(
        **common, out=tmp_path / "pool", executor={"kind": "process", "workers": 2}
    )
    assert _keys(pooled.trials) == _keys(local.trials)
    assert all(t.state is TrialState.COMPLETE for t in pooled.trials)
    by_key = {t.candidate.key(): t.measurements for t in local.trials}
    assert all(t.measurements == by_key[t.candidate.key()] for t in pooled.trials)


def test_a_killed_worker_is_replaced_and_its_trial_retried_then_failed_with_the_reason(tmp_path):
    kill_dir = tmp_path / "kill"
    kill_dir.mkdir()
    (kill_dir / "kill-1").touch()  # trial 1's worker dies once: retried, completes
    (kill_dir / "kill-4").touch()
    (kill_dir / "always-2").touch()  # trial 2 kills every worker that tries it
    factory = functools.partial(sleepy_evaluator, seconds=0.02, kill_dir=str(kill_dir))
    executor = ProcessExecutor(evaluator_factory=factory, workers=2, max_retries=2)
    trials = search(tmp_path / "run", factory, executor, budget=8)
    assert len(trials) == 8 and not any(kill_dir.glob("kill-*"))
    states = {t.number: t.state for t in trials}
    assert states.pop(2) is TrialState.FAILED
    assert set(states.values()) == {TrialState.COMPLETE}
    assert trials[2].error == (
        "worker process died (signal 9, SIGKILL) 3 times (gave up after 2 retries)"
    )


def test_exclusive_measurements_never_overlap_training(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    factory = functools.partial(
        sleepy_evaluator, seconds=0.15, measure_seconds=0.05, log_dir=str(log_dir)
    )
    executor = ProcessExecutor(evaluator_factory=factory, workers=2)
    trials = search(tmp_path / "run", factory, executor, budget=10)
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(set(t.measurements) == {"cost", "latency"} for t in trials)
    training, measuring = intervals(log_dir / "cost.log"), intervals(log_dir / "latency.log")
    assert len(training) == len(measuring) == 10
    assert overlaps(training, training) >= 2, "trainings should run side by side"
    assert overlaps(training, measuring) == 0


def test_a_profiler_killed_mid_batch_is_replaced_and_the_batch_measured_again(tmp_path):
    kill_dir = tmp_path / "kill"
    kill_dir.mkdir()
    (kill_dir / "kill-3").touch()
    factory = functools.partial(
        sleepy_evaluator, seconds=0.05, measure_seconds=0.01, measure_kill_dir=str(kill_dir)
    )
    executor = ProcessExecutor(evaluator_factory=factory, workers=2)
    trials = search(tmp_path / "run", factory, executor, budget=8)
    assert not (kill_dir / "kill-3").exists()
    assert all(t.state is TrialState.COMPLETE for t in trials), [t.error for t in trials]
    assert all(set(t.measurements) == {"cost", "latency"} for t in trials)


def test_steady_state_nsga2_keeps_workers_busy_and_its_state_is_json(tmp_path):
    # Evaluation times differ by genotype, so a generation's tail would leave a worker idle.
    factory = functools.partial(sleepy_evaluator, seconds=0.01, spread=2.0)
    executor = ProcessExecutor(evaluator_factory=factory, workers=2)
    trials = search(
        tmp_path / "run", factory, executor, budget=36, strategy="nsga2",
        options={"population_size": 6},
    )  # fmt: skip
    assert len({t.candidate.key() for t in trials}) == len(trials) == 36
    assert any(t.candidate.info.get("steady") for t in trials)
    assert all(t.state is TrialState.COMPLETE for t in trials)
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        state = store.strategy_state()
    assert state is not None and {"steady", "extra"} <= set(state)


def test_steady_state_asks_breed_while_a_generation_is_in_flight_and_resume_exactly():
    space = make_space("nb201")
    objectives = [parse_objective("cost:min")]

    def fresh():
        return NSGA2Search(space=space, objectives=objectives, seed=1, population_size=6)

    strategy = fresh()
    first = strategy.ask(6)
    strategy.known.update(c.key() for c in first)

    def told(number, candidate, value):
        m = {"cost": Measurement("cost", value, "s")}
        return Trial(number, candidate, TrialState.COMPLETE, measurements=m)

    strategy.tell([told(i, c, float(i)) for i, c in enumerate(first[:4])])
    # Two of the generation are still out: an ask breeds from the four known results.
    early = strategy.ask(2)
    assert len(early) == 2 and all(c.info["steady"] for c in early)
    assert not {c.key() for c in early} & strategy.known
    strategy.known.update(c.key() for c in early)
    state = json.loads(json.dumps(strategy.state_dict()))
    restored = fresh()
    restored.known.update(strategy.known)
    restored.load_state_dict(state)
    rest = [told(4, first[4], 4.0), told(5, first[5], 5.0), told(6, early[0], 0.5)]
    for s in (strategy, restored):
        s.tell(rest)
    # The generation is complete: both start the same next generation.
    assert [c.key() for c in strategy.ask(6)] == [c.key() for c in restored.ask(6)]


def test_executor_settings_are_checked():
    with pytest.raises(
        ConfigError, match=r"field 'gpus' is unknown; known fields: .*gpus_per_trial"
    ):
        ExecutorSettings.from_mapping({"kind": "ray", "gpus": 1})
    with pytest.raises(ConfigError, match="'max_retries' must be greater than or equal to 0"):
        ExecutorSettings.from_mapping({"kind": "process", "max_retries": -1})
    with pytest.raises(ConfigError, match="'workers' must be a valid integer"):
        ExecutorSettings.from_mapping({"kind": "process", "workers": "two"})
    settings = ExecutorSettings.from_mapping({"kind": "ray", "gpus_per_trial": "0.5"})
    assert settings.gpus_per_trial == 0.5 and settings.max_retries == 2


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_driver_sigkill_then_resume_with_the_process_executor(tmp_path, nb201_csv):
    out, budget = tmp_path / "killed", 1500
    args = [*nb201_args(nb201_csv, out, budget=budget, strategy="random"), "--executor", "process"]
    proc = subprocess.Popen(
        hwnas_cmd(*args, "--workers", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_complete_trials(out / "hwnas.db", 200, proc, timeout=90)
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert len(workers) >= 2
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers):  # orphaned workers notice and exit
        assert time.monotonic() < deadline, "worker processes outlived the driver"
        time.sleep(0.05)
    before = _trial_rows(out / "hwnas.db")
    assert 200 <= len(before) < budget

    _resume_completes(out, budget, before, "--workers", "2")
    assert hwnas.results.open_run(out).config.executor == {"kind": "process", "workers": 2}
