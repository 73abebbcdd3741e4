import subprocess
import sys
import textwrap
import time

import pytest

from hwnas.errors import RunError
from hwnas.store import DB_NAME, RunStore
from hwnas.types import Candidate, Genotype, Measurement, TrialState


def _cands(*specs):
    return [Candidate(Genotype("macro", s)) for s in specs]


def test_round_trip_through_sqlite(tmp_path):
    run = tmp_path / "run"
    with RunStore.create(run, {"space": "macro"}) as store:
        trials = store.add_candidates(_cands("00000000", "11111111"), {"step": 1})
        assert [t.number for t in trials] == [0, 1]
        done = trials[0].with_result(
            TrialState.COMPLETE,
            {
                "latency": Measurement(
                    "latency", 1.5, "ms", device="cpu", stats={"n": 3.0}, env={"threads": 1}
                )
            },
            finished=time.time(),
        )
        store.record([done], {"step": 2})
        store.log_event("round", {"tau": 0.5})
    with RunStore.open(run) as store:
        assert store.config() == {"space": "macro"}
        assert store.strategy_state() == {"step": 2}
        loaded = store.trials()
        assert [t.state for t in loaded] == [TrialState.COMPLETE, TrialState.QUEUED]
        assert loaded[0].measurements["latency"] == done.measurements["latency"]
        assert store.untold_finished() == []
        assert store.known_keys() == {"macro:00000000", "macro:11111111"}
        assert store.events("round")[0]["tau"] == 0.5
        more = store.add_candidates(_cands("22222222"), {"step": 3})
        assert more[0].number == 2


def test_finished_but_untold_trials_are_reported(tmp_path):
    with RunStore.create(tmp_path / "r", {}) as store:
        (t,) = store.add_candidates(_cands("00000000"), {})
        store.finish(t.with_result(TrialState.FAILED, error="boom"))
        assert store.untold_finished() == [0]
        assert store.trial(0).error == "boom"


def test_refuses_to_overwrite_a_run(tmp_path):
    RunStore.create(tmp_path / "r", {}).close()
    with pytest.raises(RunError, match="hwnas resume"):
        RunStore.create(tmp_path / "r", {})


def test_second_process_gets_run_in_use(tmp_path):
    run = tmp_path / "r"
    RunStore.create(run, {}).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from hwnas.store import RunStore
                s = RunStore.open({str(run)!r})
                print("locked", flush=True)
                time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match="in use"):
            RunStore.open(run)
        # Readers do not need the lock.
        with RunStore.open(run, read_only=True) as reader:
            assert reader.trials() == []
    finally:
        holder.kill()
        holder.wait()
    # The kernel released the lock with the killed process.
    RunStore.open(run).close()


def test_corrupt_or_missing_database(tmp_path):
    with pytest.raises(RunError, match="not a hwnas run"):
        RunStore.open(tmp_path)
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RunError, match="corrupt"):
        RunStore.open(tmp_path)
