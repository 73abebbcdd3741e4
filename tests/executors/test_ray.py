"""The Ray executor on a real local Ray (one ``ray.init(num_cpus=2)`` for the module)."""

import functools
import os
import signal
import subprocess

import pytest

ray = pytest.importorskip("ray")

import executor_helpers  # noqa: E402
from executor_helpers import intervals, overlaps, search, sleepy_evaluator  # noqa: E402
from test_cli import (  # noqa: E402
    _resume_completes,
    _trial_rows,
    _wait_for_complete_trials,
    hwnas_cmd,
    nb201_args,
)

import hwnas  # noqa: E402
from hwnas.executors.ray import RayExecutor  # noqa: E402
from hwnas.types import TrialState  # noqa: E402

pytestmark = pytest.mark.ray
NB201 = dict(space="nb201", objectives=["acc_cifar10:max", "lat_fpga_ms:min"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray for the module; its GCS address lets a CLI driver attach to it."""
    saved = os.environ.get("HWNAS_GATE_DIR")
    # Set before ray.init: Ray's workers inherit it, so the tests' gates stay private.
    os.environ["HWNAS_GATE_DIR"] = str(tmp_path_factory.mktemp("gates"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    # Ray workers cannot import the tests directory: ship the helpers by value.
    ray.cloudpickle.register_pickle_by_value(executor_helpers)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.cloudpickle.unregister_pickle_by_value(executor_helpers)
        ray.shutdown()
        if saved is None:
            os.environ.pop("HWNAS_GATE_DIR", None)
        else:
            os.environ["HWNAS_GATE_DIR"] = saved


def test_ray_executor_proposes_the_trials_of_the_local_executor(cluster, tmp_path, nb201_csv):
    common = dict(**NB201, benchmark=nb201_csv, strategy="random", budget=30, seed=7)
    local = hwnas.run_search(**common, out=tmp_path / "local")
    on_ray = hwnas.run_search(
        **common, out=tmp_path / "ray", executor={"kind": "ray", "workers": 2}
    )
    assert sorted(t.candidate.key() for t in on_ray.trials) == sorted(
        t.candidate.key() for t in local.trials
    )
    by_key = {t.candidate.key(): t.measurements for t in local.trials}
    assert all(t.measurements == by_key[t.candidate.key()] for t in on_ray.trials)
    assert ray.is_initialized(), "the executor shut down a Ray it did not start"


def test_a_task_that_kills_its_worker_is_retried_then_failed_with_the_reason(cluster, tmp_path):
    kill_dir = tmp_path / "kill"
    kill_dir.mkdir()
    (kill_dir / "kill-0").touch()  # dies once, then completes
    (kill_dir / "always-1").touch()  # dies every time
    factory = functools.partial(sleepy_evaluator, seconds=0.01, kill_dir=str(kill_dir))
    executor = RayExecutor(evaluator_factory=factory, workers=2, max_retries=1)
    trials = search(tmp_path / "run", factory, executor, budget=5)
    assert len(trials) == 5 and not any(kill_dir.glob("kill-*"))
    states = {t.number: t.state for t in trials}
    assert states.pop(1) is TrialState.FAILED
    assert set(states.values()) == {TrialState.COMPLETE}
    assert trials[1].error == "Ray worker died (WorkerCrashedError) 2 times (gave up after 1 retry)"


def test_the_profiling_actor_never_measures_while_tasks_train(cluster, tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    factory = functools.partial(
        sleepy_evaluator, seconds=0.4, measure_seconds=0.05, log_dir=str(log_dir)
    )
    executor = RayExecutor(evaluator_factory=factory, workers=2)
    trials = search(tmp_path / "run", factory, executor, budget=12)
    assert all(set(t.measurements) == {"cost", "latency"} for t in trials)
    training, measuring = intervals(log_dir / "cost.log"), intervals(log_dir / "latency.log")
    assert len(training) == len(measuring) == 12
    # (once Ray's second worker process is up)
    assert overlaps(training, training) >= 2, "trainings should run side by side"
    assert overlaps(training, measuring) == 0


def test_driver_sigkill_then_resume_reattaches_and_loses_nothing(cluster, tmp_path, nb201_csv):
    out, budget = tmp_path / "killed", 160
    args = nb201_args(nb201_csv, out, budget=budget, strategy="random")
    proc = subprocess.Popen(
        hwnas_cmd(*args, "--ray-address", cluster, "--workers", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_complete_trials(out / "hwnas.db", 30, proc, timeout=120)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = _trial_rows(out / "hwnas.db")
    assert 30 <= len(before) < budget

    _resume_completes(out, budget, before)
