"""Strategy state is saved in parts: exact round trips, and bytes per trial that do not grow."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas import state_delta
from hwnas.api import Session
from hwnas.config import RunConfig
from hwnas.runner import Budget
from hwnas.store import DB_NAME, RunStore
from hwnas.types import Candidate, Genotype

STATES = [
    {},
    {"rng": {"state": 1}, "seen": [1, 2], "queue": ["a"], "empty": {}},
    {"rng": {"state": 2}, "seen": [1, 2, 3, 4], "queue": [], "empty": {}, "new": (1, 2)},
    {"rng": {"state": 2}, "seen": [9], "queue": {"x": 1}, "nested": {"a": {"b": [1.5]}}},
    {"rng": {"state": 3}, "seen": [9, [1, 2]], "queue": {"x": 1, "y": [2]}, "nested": {}},
    {"rng": 3, "seen": "text", 5: None},
    {},
]


def test_every_saved_state_loads_back_exactly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunStore.create(run, {}) as store:
        for i, state in enumerate(STATES):
            store.add_candidates([Candidate(Genotype("macro", f"{i:08d}"))], state)
            expected = json.loads(json.dumps(state))
            assert store.strategy_state() == expected
            with RunStore.open(run, read_only=True) as reader:
                assert reader.strategy_state() == expected
    with RunStore.open(run) as store:  # a fresh store object diffs against what is stored
        store.save_strategy_state({"seen": [1], "more": [2]})
        store.save_strategy_state({"seen": [1, 2], "more": [2]})
        assert store.strategy_state() == {"seen": [1, 2], "more": [2]}


def test_a_growing_list_is_written_as_its_tail(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run", {}) as store:
        observations: list[list[float]] = []
        sizes = []
        for i in range(200):
            observations.append([float(i), 2.0 * i])
            before = store.state_bytes_written
            store.save_strategy_state({"observations": observations, "step": i})
            sizes.append(store.state_bytes_written - before)
        assert max(sizes[100:]) <= 2 * max(sizes[1:10])
        assert store.strategy_state() == {"observations": observations, "step": 199}


def test_a_run_written_before_parts_keeps_its_state_and_moves_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    RunStore.create(run, {}).close()
    with sqlite3.connect(run / DB_NAME) as db:  # as the one-row format wrote it
        db.execute("DROP TABLE strategy_parts")
        db.execute("INSERT INTO strategy_state VALUES (1, ?, 0)", (json.dumps({"step": 7}),))
    with RunStore.open(run, read_only=True) as store:
        assert store.strategy_state() == {"step": 7}
    with RunStore.open(run) as store:
        assert store.strategy_state() == {"step": 7}
        store.save_strategy_state({"step": 8})
    with RunStore.open(run) as store:
        assert store.strategy_state() == {"step": 8}


@pytest.mark.parametrize("strategy", ["random", "nsga2", "lemonade", "hillclimb", "rl"])
def test_state_bytes_per_trial_do_not_grow_with_the_run(
    strategy: str, nb201_csv: Path, tmp_path: Path, one_thread: None
) -> None:
    config = RunConfig(
        space="nb201",
        strategy=strategy,
        # hill climbing is single-objective (two objectives are refused): it climbs accuracy.
        objectives=["acc_cifar10:max"] + ([] if strategy == "hillclimb" else ["lat_fpga_ms:min"]),
        benchmark=str(nb201_csv),
        seed=0,
    )
    session = Session.prepare(config)
    with RunStore.create(tmp_path / "run", config.to_dict()) as store:
        session.run(store, Budget(evaluations=40), executor=None, progress=False)
        early = store.state_bytes_written / 40
        session.run(store, Budget(evaluations=160), executor=None, progress=False)
        late = (store.state_bytes_written - early * 40) / 120
    # Written whole after every ask and tell, the state of a strategy that keeps its
    # observations costs several times more per trial late in the run than early.
    assert late <= 2.0 * early + 2000, (early, late)


leaf = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=4), st.none(), st.booleans()
)
value = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.sampled_from("abc"), value), min_size=1, max_size=6))
def test_diffs_applied_in_turn_rebuild_every_state(states: list[dict]) -> None:
    rows: list[tuple[str, str]] = []
    stored: dict = {}
    for i, state in enumerate(states):
        # Grow a list in place now and then, so that tails are exercised too.
        state = {**state, "grow": list(range(i * 3))}
        new = state_delta.flatten(state)
        changes = state_delta.diff(stored, new)
        gone = {state_delta.encode_path(p) for p in changes.delete}
        rows = [r for r in rows if r[0] not in gone] + list(changes.chunks())
        stored = new
        assert state_delta.unflatten(state_delta.join(rows)) == json.loads(json.dumps(state))
