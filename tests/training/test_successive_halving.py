"""Successive halving: rungs from the config, promotions, state round trip, the front."""

import json

import pytest

from hwnas.config import RunConfig
from hwnas.errors import ConfigError
from hwnas.objectives.base import parse_objective
from hwnas.results import compute_front
from hwnas.search import make_strategy
from hwnas.search.successive_halving import SuccessiveHalving
from hwnas.spaces import make_space
from hwnas.types import Candidate, Measurement, Trial, TrialState

SPACE = make_space("nb201")
OBJECTIVES = [parse_objective("error"), parse_objective("params")]


def _config(**training):
    return RunConfig(
        space="nb201", strategy="random", objectives=["error", "params"], dataset="digits",
        training={"fidelity": "sh", **training},
    )  # fmt: skip


def _sh(seed=0, **training):
    inner = make_strategy("random", space=SPACE, objectives=OBJECTIVES, seed=seed)
    return SuccessiveHalving.wrap(inner, _config(**training))


def test_rungs_come_from_the_training_settings():
    assert _sh(epochs=9).fidelities == [1.0, 3.0, 9.0]
    assert _sh(epochs=4, sh_eta=2, sh_min_epochs=0.5).fidelities == [0.5, 1.0, 2.0, 4.0]
    assert _sh(epochs=5, sh_rungs=2).fidelities == [1.667, 5.0]
    with pytest.raises(ConfigError, match="sh_eta must be an integer >= 2"):
        _sh(sh_eta=1)
    with pytest.raises(ConfigError, match="must be below epochs"):
        _sh(epochs=2, sh_min_epochs=3)


def _evaluate(number, candidate):
    """Error falls with more epochs; params from the encoding. Trial 4 fails."""
    if number == 4:
        return Trial(number, candidate, TrialState.FAILED, error="RuntimeError: boom")
    vec = SPACE.encode(candidate.genotype)
    error = 50.0 + 10 * float(vec[::3].sum()) / candidate.fidelity
    params = float(vec[1::2].sum())
    return Trial(
        number,
        candidate,
        TrialState.COMPLETE,
        {"error": Measurement("error", error, "%"), "params": Measurement("params", params, "")},
    )


def _drive(strategy, asks, start=0):
    """Ask one at a time and evaluate at once, as the runner does with a local executor."""
    trials = []
    for number in range(start, start + asks):
        (candidate,) = strategy.ask(1)
        strategy.known.add(candidate.key())
        trial = _evaluate(number, candidate)
        strategy.tell([trial])
        trials.append(trial)
    return trials


def test_promotions_continue_the_same_genotype_from_its_own_trial():
    sh = _sh(epochs=9)
    trials = _drive(sh, 20)
    by_number = {t.number: t for t in trials}
    promoted = [t for t in trials if t.candidate.parent is not None]
    assert promoted, "nothing was promoted"
    for t in promoted:
        parent = by_number[t.candidate.parent]
        assert t.genotype == parent.genotype
        assert t.candidate.transfer == {"kind": "continue"}
        assert (
            t.candidate.fidelity
            == sh.fidelities[sh.fidelities.index(parent.candidate.fidelity) + 1]
        )
        assert parent.state is TrialState.COMPLETE
    assert {t.candidate.fidelity for t in trials} == {1.0, 3.0, 9.0}
    # Many short runs, fewer longer ones (ASHA promotes the top third of a rung as it fills).
    sizes = [sum(t.candidate.fidelity == f for t in trials) for f in sh.fidelities]
    assert sizes[0] > sizes[1] > sizes[2] >= 1, sizes
    assert 4 not in {t.candidate.parent for t in promoted}, "a failed trial was promoted"
    # Keys carry the fidelity; the inner strategy knows the plain genotypes.
    assert len({t.candidate.key() for t in trials}) == 20
    assert {t.genotype.key() for t in trials} <= sh.inner.known


def test_state_round_trips_through_json():
    a = _sh(seed=3, epochs=9)
    first = _drive(a, 12)
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    b = _sh(seed=3, epochs=9)
    b.known.update(t.candidate.key() for t in first)
    b.load_state_dict(state)
    after_a = [t.candidate for t in _drive(a, 10, start=12)]
    after_b = [t.candidate for t in _drive(b, 10, start=12)]
    assert after_a == after_b


def test_resume_with_other_rungs_is_refused():
    state = _sh(epochs=9).state_dict()
    with pytest.raises(ConfigError, match="resume with the run's own training settings"):
        _sh(epochs=3).load_state_dict(state)


def _trial(number, spec, fidelity, error, state=TrialState.COMPLETE):
    candidate = Candidate(SPACE.parse(spec), fidelity=fidelity)
    values = {"error": Measurement("error", error, "%"), "params": Measurement("params", 1.0, "")}
    return Trial(number, candidate, state, values if state is TrialState.COMPLETE else {})


def test_front_counts_each_genotype_at_its_highest_fidelity():
    a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    b = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    trials = [
        _trial(0, a, 1.0, 20.0),  # stale: trial 2 trained the same network further
        _trial(1, b, 1.0, 30.0),
        _trial(2, a, 3.0, 25.0),  # worse than its own earlier result, but it is the real one
        _trial(3, b, 3.0, 0.0, state=TrialState.FAILED),  # failed: b counts at fidelity 1
    ]
    front = compute_front(trials, OBJECTIVES)
    assert [t.number for t in front.members] == [2]
    assert front.counts == {"trials": 4, "complete": 3, "failed": 1, "feasible": 2, "front": 1}
    # Without fidelities nothing changes: both networks count.
    plain = [_trial(0, a, None, 20.0), _trial(1, b, None, 30.0)]
    assert [t.number for t in compute_front(plain, OBJECTIVES).members] == [0]
    assert compute_front(plain, OBJECTIVES).counts["feasible"] == 2
