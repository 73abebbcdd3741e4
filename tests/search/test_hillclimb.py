"""NASH hill climbing: mutations on a table, exact morphisms with inherited weights on digits."""

import json

import numpy as np
import pytest

import hwnas
from hwnas.morphisms import get_morphism
from hwnas.objectives.base import parse_objective
from hwnas.search import make_strategy
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.types import Measurement, Trial, TrialState

CHAIN = make_space("chain", {"resolution": 16, "in_channels": 1})


pytestmark = pytest.mark.usefixtures("one_thread")


def _synthetic(number, candidate):
    """Error falls as networks get deeper and wider (a stand-in for training)."""
    layers = CHAIN.layer_list(candidate.genotype)
    width = sum(layer.get("channels", 0) for layer in layers)
    error = 100.0 / (1 + len(layers)) + 50.0 / (1 + width / 16)
    return Trial(
        number, candidate, TrialState.COMPLETE, {"error": Measurement("error", error, "%")}
    )


def _climb(strategy, rounds):
    trials = []
    for _ in range(rounds):
        batch = strategy.ask(8)
        assert batch, "the climb stopped"
        for c in batch:
            strategy.known.add(c.key())
        told = [_synthetic(len(trials) + i, c) for i, c in enumerate(batch)]
        trials.extend(told)
        strategy.tell(told)
    return trials


def test_climbs_by_exact_morphisms_from_the_current_best():
    strategy = make_strategy(
        "hillclimb", space=CHAIN, objectives=[parse_objective("error")], seed=0,
        options={"mode": "morphisms", "neighbours": 4, "epochs_per_child": 2.0},
    )  # fmt: skip
    trials = _climb(strategy, 6)
    start, children = trials[0], trials[1:]
    assert start.parent is None and len(children) == 20
    by_number = {t.number: t for t in trials}
    best = start
    for round_start in range(1, len(trials), 4):
        batch = trials[round_start : round_start + 4]
        assert {t.parent for t in batch} == {best.number}  # neighbours of the current best
        for t in batch:
            transfer = t.candidate.transfer
            assert t.candidate.fidelity == 2.0 and "distill" not in transfer
            genotype = by_number[t.parent].genotype
            for step in transfer["steps"]:
                morphism = get_morphism(CHAIN, step["name"])
                assert morphism.exact  # NASH uses exact morphisms only
                genotype = morphism.child(CHAIN, genotype, step["params"])
            assert genotype == t.genotype
        best = min([best, *batch], key=lambda t: t.value("error"))
    assert best.value("error") < start.value("error")
    rounds = [e for kind, e in strategy.drain_events() if kind == "round"]
    values = [e["best_value"] for e in rounds]
    assert values == sorted(values, reverse=True)


def test_state_round_trip():
    options = {"mode": "morphisms", "neighbours": 3}
    objectives = [parse_objective("error")]
    a = make_strategy("hillclimb", space=CHAIN, objectives=objectives, seed=2, options=options)
    _climb(a, 3)
    a.ask(2)
    state = json.loads(json.dumps(a.state_dict()))
    b = make_strategy("hillclimb", space=CHAIN, objectives=objectives, seed=2, options=options)
    b.known.update(a.known)
    b.load_state_dict(state)
    assert b.ask(8) == a.ask(8)


def test_tabular_climb_with_mutations(tmp_path, nb201_csv):
    result = hwnas.run_search(
        space="nb201", strategy="hillclimb", benchmark=nb201_csv,
        objectives=["acc_cifar10:max"], budget=60, out=tmp_path / "run",
        seed=0,
    )  # fmt: skip
    trials = result.trials
    assert len(trials) == 60 and all(t.parent is None for t in trials)
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        rounds = store.events("round")
    best = [-e["best_value"] for e in rounds]  # accuracy, maximised
    assert len(rounds) >= 5 and best == sorted(best) and best[-1] > best[0]
    space = make_space("nb201")
    first = trials[0].genotype
    neighbours = [t.genotype for t in trials if t.candidate.info["round"] == 2]
    assert len(neighbours) == 8
    distance = [int((space.to_indices(g) != space.to_indices(first)).sum()) for g in neighbours]
    assert max(distance) <= 2  # two mutations away from the start


@pytest.mark.slow
def test_a_digits_climb_trains_children_from_the_parent(tmp_path):
    result = hwnas.run_search(
        space="chain", strategy="hillclimb", dataset="digits", objectives=["error"], budget=4,
        out=tmp_path / "run", space_options={"resolution": 16, "in_channels": 1},
        strategy_options={"neighbours": 3, "epochs_per_child": 1.0,
                          "initial": "k3c16-k3c16-pool-k3c32-pool-k3c32"},
        training={"epochs": 2, "batch_size": 32, "data_fraction": 0.5, "train_device": "cpu"},
    )  # fmt: skip
    start, *children = result.trials
    assert start.genotype.spec == "k3c16-k3c16-pool-k3c32-pool-k3c32"
    assert all(t.parent == 0 and t.candidate.transfer["kind"] == "morphism" for t in children)
    errors = np.array([t.value("error") for t in children])
    # One more epoch from inherited weights: no child is back at chance (90% error).
    assert (errors < start.value("error") + 15).all()
