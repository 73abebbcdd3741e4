"""Every tabular-capable strategy: ask/tell works and state_dict round-trips exactly."""

import json

import pytest

from hwnas.objectives.base import parse_objective
from hwnas.search import STRATEGIES, make_strategy
from hwnas.spaces import make_space
from hwnas.types import Measurement, Trial, TrialState

# Strategies that need weights or a supernet are covered by their own tests.
TABULAR = [
    n for n in STRATEGIES.names() if n not in {"fbnet", "squeezenas", "darts", "snas", "enas"}
]


def _evaluate(trial_number, candidate):
    """A cheap deterministic bi-objective from the genotype's encoding (no table needed)."""
    # Real tables are exercised in tests/test_api.py; here the strategy contract is the point.
    vec = SPACE.encode(candidate.genotype)
    a = float(vec[::2].sum())
    b = float(vec[1::2].sum() + 0.1 * (trial_number % 3))
    if trial_number % 7 == 3:
        return Trial(trial_number, candidate, TrialState.FAILED, error="synthetic failure")
    return Trial(
        trial_number,
        candidate,
        TrialState.COMPLETE,
        {"f1": Measurement("f1", a, ""), "f2": Measurement("f2", b, "")},
    )


SPACE = make_space("nb201")
OBJECTIVES = [parse_objective("f1:min"), parse_objective("f2:max")]


def _drive(strategy, steps, counter, trace):
    for _ in range(steps):
        asked = strategy.ask(5)
        trials = []
        for c in asked:
            strategy.known.add(c.genotype.key())
            trials.append(_evaluate(counter[0], c))
            counter[0] += 1
        trace.extend(c.genotype.spec for c in asked)
        if trials:
            strategy.tell(trials)


@pytest.mark.parametrize("name", TABULAR)
def test_ask_tell_and_state_round_trip(name):
    a = make_strategy(name, space=SPACE, objectives=OBJECTIVES, seed=3)
    counter, trace = [0], []
    _drive(a, 12, counter, trace)
    assert trace, "the strategy proposed nothing"
    assert len(set(trace)) == len(trace), "a genotype was proposed twice"
    state = json.loads(json.dumps(a.state_dict()))  # must be plain JSON
    b = make_strategy(name, space=SPACE, objectives=OBJECTIVES, seed=3)
    b.known.update(a.known)
    b.load_state_dict(state)
    trace_a, trace_b = [], []
    counter_b = [counter[0]]
    _drive(a, 8, counter, trace_a)
    _drive(b, 8, counter_b, trace_b)
    assert trace_a == trace_b and trace_a


@pytest.mark.parametrize("name", TABULAR)
def test_same_seed_same_candidates(name):
    traces = []
    for _ in range(2):
        s = make_strategy(name, space=SPACE, objectives=OBJECTIVES, seed=11)
        trace = []
        _drive(s, 6, [0], trace)
        traces.append(trace)
    assert traces[0] == traces[1]
    other = []
    _drive(make_strategy(name, space=SPACE, objectives=OBJECTIVES, seed=12), 6, [0], other)
    assert other != traces[0]


def test_unknown_strategy_option_is_a_clear_error():
    from hwnas.errors import ConfigError

    with pytest.raises(ConfigError, match="population_size"):
        make_strategy("nsga2", space=SPACE, objectives=OBJECTIVES, options={"pop": 3})
