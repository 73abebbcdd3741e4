"""LEMONADE with network morphisms: Lamarckian inheritance on real digits training, density-
guided parent sampling, the generation logic's state and a resumed run."""

import json

import numpy as np
import pytest
from scipy.stats import binomtest

import hwnas
from hwnas.api import resume
from hwnas.evaluate.base import EvalContext
from hwnas.morphisms import get_morphism
from hwnas.objectives.base import parse_objective
from hwnas.search import make_strategy
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.training.provider import TrainingProvider
from hwnas.training.settings import TrainSettings
from hwnas.types import Candidate, Measurement, Trial, TrialState

SPACE = make_space("chain", {"resolution": 16, "in_channels": 1})
OBJECTIVES = [parse_objective("error"), parse_objective("params")]
SMALL = {"initial_population": 4, "initial_pool": 16, "n_pc": 16, "n_ac": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


def _strategy(seed=0, **options):
    return make_strategy(
        "lemonade",
        space=SPACE,
        objectives=OBJECTIVES,
        seed=seed,
        options={**SMALL, "mode": "morphisms", "epochs_per_child": 2.0, "initial_epochs": 4.0,
                 **options},
    )  # fmt: skip


def _evaluate(strategy, number, candidate):
    """Error falls with depth (a synthetic stand-in for training); params are the real count."""
    layers = SPACE.layer_list(candidate.genotype)
    params = strategy.cheap(candidate.genotype, ["params"])["params"]
    error = 60.0 / (1 + len(layers)) + (number % 5)
    return Trial(
        number,
        candidate,
        TrialState.COMPLETE,
        {
            "error": Measurement("error", error, "%"),
            "params": Measurement("params", params, "count"),
        },
    )


def _drive(strategy, trials, steps):
    """Ask and tell like the runner with a local executor; returns the asked candidates."""
    asked = []
    for _ in range(steps):
        batch = strategy.ask(4)
        for c in batch:
            strategy.known.add(c.key())
        told = [_evaluate(strategy, len(trials) + i, c) for i, c in enumerate(batch)]
        trials.extend(told)
        asked.extend(batch)
        strategy.tell(told)
    return asked


def test_children_are_morphisms_of_population_members():
    strategy = _strategy()
    trials: list[Trial] = []
    first = strategy.ask(4)
    assert len(first) == 4 and all(c.parent is None and c.fidelity == 4.0 for c in first)
    assert strategy.ask(4) == []  # the next generation waits for this one's results
    for c in first:
        strategy.known.add(c.key())
    told = [_evaluate(strategy, i, c) for i, c in enumerate(first)]
    trials.extend(told)
    strategy.tell(told)
    children = _drive(strategy, trials, 6)
    assert len(children) == 24
    by_number = {t.number: t for t in trials}
    seen = set()
    for child in children:
        assert child.parent is not None and child.fidelity == 2.0
        parent = by_number[child.parent]
        assert parent.number < next(t.number for t in trials if t.candidate == child)
        transfer = child.transfer
        assert transfer["kind"] == "morphism" and transfer["steps"]
        genotype = parent.genotype
        for step in transfer["steps"]:
            morphism = get_morphism(SPACE, step["name"])
            genotype = morphism.child(SPACE, genotype, step["params"])
            seen.add(step["name"])
        assert genotype == child.genotype  # the steps lead from the parent to the child
        exact = all(step["exact"] for step in transfer["steps"])
        assert ("distill" in transfer) == (not exact)
        assert child.info["generation"] >= 2
    assert {"deepen", "widen"} <= seen and seen & {"remove_layer", "prune", "remove_skip"}
    events = [e for kind, e in strategy.drain_events() if kind == "generation"]
    assert [e["generation"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["population"] >= 1 for e in events)
    # The one hypervolume definition: in [0, 1], over the bounds of everything evaluated so far
    # (stored with each event), the same figure the progress line shows.
    for e in events:
        assert 0 < e["hypervolume"] <= 1
        ideal, nadir = e["hypervolume_bounds"]["ideal"], e["hypervolume_bounds"]["nadir"]
        assert all(lo <= hi for lo, hi in zip(ideal, nadir))


def test_state_round_trip_continues_the_same_generations():
    a = _strategy(seed=3)
    trials: list[Trial] = []
    _drive(a, trials, 5)
    a.ask(2)  # mid-generation: part of it handed out, the rest queued
    state = json.loads(json.dumps(a.state_dict()))
    b = _strategy(seed=3)
    b.known.update(a.known)
    b.load_state_dict(state)
    assert b.ask(4) == a.ask(4)
    assert b.state_dict() == a.state_dict()


def test_parent_sampling_favours_sparse_regions():
    strategy = _strategy(seed=0)
    rng = np.random.default_rng(0)
    crowd = rng.normal(0.0, 0.05, size=(19, 2))
    points = np.vstack([crowd, [[2.0, 2.0]]])  # one member alone in its region
    draws = strategy.sample_parents(points, 2000)
    lonely = int((draws == 19).sum())
    # Uniform sampling would pick it 1 time in 20; inverse density much more often.
    assert lonely / len(draws) > 0.3
    assert binomtest(lonely, len(draws), 1 / 20, alternative="greater").pvalue < 1e-12
    # Within the crowd, the outskirts are drawn more often than the centre.
    distance = np.linalg.norm(crowd - crowd.mean(axis=0), axis=1)
    counts = np.bincount(draws, minlength=20)[:19]
    outer, inner = distance > np.median(distance), distance <= np.median(distance)
    assert counts[outer].mean() > counts[inner].mean()


@pytest.mark.slow
def test_children_start_from_their_parents_trained_weights(tmp_path):
    # A real parent, trained on digits; a child made by exact morphisms trains for a few
    # batches only: it keeps the parent's accuracy, while the same child from scratch is
    # near chance.
    provider = TrainingProvider(
        space=SPACE, dataset="digits", settings=TrainSettings(epochs=3, batch_size=32),
        train_device="cpu",
    )  # fmt: skip
    parent = SPACE.parse("k3c16-k3c16-pool-k3c32-pool-k3c32")
    ctx = EvalContext(run_dir=tmp_path, trial=0)
    parent_error = provider.evaluate(Candidate(parent), ["error"], ctx)["error"].value
    assert parent_error < 40
    steps = [
        get_morphism(SPACE, "widen").describe({"layer": 4, "channels": 48, "seed": 1}),
        get_morphism(SPACE, "add_skip").describe({"layer": 5, "source": 3}),
    ]
    child = SPACE.parse("k3c16-k3c16-pool-k3c48-pool-k3c32")
    with_parent = Candidate(
        child, parent=0, transfer={"kind": "morphism", "steps": steps, "seed": 0}, fidelity=0.05
    )
    inherited = provider.evaluate(with_parent, ["error"], EvalContext(tmp_path, trial=1))["error"]
    scratch = provider.evaluate(
        Candidate(child, fidelity=0.05), ["error"], EvalContext(tmp_path, 2)
    )
    assert inherited.env["transfer"]["kind"] == "morphism" and inherited.env["transfer"]["exact"]
    assert abs(inherited.value - parent_error) < 10
    assert scratch["error"].value > 60


@pytest.mark.slow
def test_a_digits_run_inherits_logs_generations_and_resumes(tmp_path):
    out = tmp_path / "run"
    options = {**SMALL, "initial_population": 3, "n_ac": 2, "epochs_per_child": 1.0}
    training = {"epochs": 1, "batch_size": 32, "data_fraction": 0.4, "train_device": "cpu"}
    common = dict(space="chain", strategy="lemonade", objectives=["error", "params"])
    hwnas.run_search(
        **common, dataset="digits", budget=5, out=out, seed=1, strategy_options=options,
        space_options={"resolution": 16, "in_channels": 1}, training=training,
    )  # fmt: skip
    result = resume(out, budget=9)
    trials = result.trials
    assert len(trials) == 9 and all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.candidate.key() for t in trials}) == 9
    roots = [t for t in trials if t.parent is None]
    assert len(roots) == 3 and all(t.candidate.fidelity is None for t in roots)
    for t in trials[3:]:  # every child: a morphism of an earlier, trained trial
        assert t.parent is not None and t.parent < t.number
        assert (out / "weights" / f"trial-{t.parent:05d}.safetensors").is_file()
        assert t.candidate.transfer["kind"] == "morphism" and t.candidate.fidelity == 1.0
        assert t.measurements["error"].env["transfer"]["kind"] == "morphism"
    with RunStore.open(out, read_only=True) as store:
        events = store.events("generation")
    assert [e["generation"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) >= 3  # generations went on after the resume
