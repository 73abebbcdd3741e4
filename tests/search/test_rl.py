"""The Neural-Architect-style RL strategy: controller, predictors, reward engine, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

import hwnas
from hwnas.api import resume
from hwnas.errors import ConfigError
from hwnas.evaluate.table import TabularBenchmark
from hwnas.objectives.base import parse_constraint, parse_objective
from hwnas.search import make_strategy
from hwnas.search.rl.controller import Controller, MovingBaseline
from hwnas.search.rl.reward import REWARDS, RewardEngine
from hwnas.search.rl.state import one_thread
from hwnas.search.rl.tokens import SpaceCodec
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.types import Trial, TrialState

SPACE = make_space("nb201")
NB201_OBJECTIVES = ["acc_cifar10:max", "lat_fpga_ms:min"]


def _drive(strategy, table, evaluations: int, metrics) -> list[str]:
    """Ask/tell against a benchmark table until ``evaluations`` trials are told."""
    specs: list[str] = []
    while len(specs) < evaluations:
        asked = strategy.ask(min(strategy.batch_size, evaluations - len(specs)))
        assert asked, "the strategy proposed nothing"
        trials = []
        for c in asked:
            strategy.known.add(c.key())
            values = table.query(c.genotype, metrics)
            trials.append(Trial(len(specs) + len(trials), c, TrialState.COMPLETE, values))
        specs.extend(c.genotype.spec for c in asked)
        strategy.tell(trials)
    return specs


def test_controller_expected_reward_rises_on_synthetic_reward():
    """REINFORCE with a moving-average baseline learns which transformation pays."""
    codec = SpaceCodec(SPACE, cheap_features=False)
    generator = torch.Generator().manual_seed(0)
    controller = Controller(
        codec=codec, objectives=2, hidden=16, expected_changes=1.5, lr=0.03, generator=generator
    )
    optimum = np.array([3, 1, 3, 0, 2, 3])  # reward: share of layers equal to this network

    def reward(children: np.ndarray) -> np.ndarray:
        return (children == optimum).mean(axis=1)

    rng = np.random.default_rng(0)
    prefs = np.full((64, 2), 0.5)
    held_out = codec.sample(rng, 64)
    before = controller.expected_reward(held_out, prefs, reward, generator)
    baseline = MovingBaseline(groups=1, decay=0.9)
    with one_thread():
        for _ in range(20):
            parents = codec.sample(rng, 64)
            children = controller.sample(parents, prefs, generator)
            advantages = baseline.advantages(np.zeros(64, dtype=np.int64), reward(children))
            controller.reinforce(parents, children, prefs, advantages, entropy_coef=0.01)
    after = controller.expected_reward(held_out, prefs, reward, generator)
    # From about the parents' 0.2 (a random policy rarely hits the optimum's choices) to
    # most layers right: each step changes the mismatched layers towards the optimum.
    assert before < 0.3 and after > before + 0.4, (before, after)


def test_reward_engine_respects_constraints():
    objectives = [parse_objective("acc:max"), parse_objective("lat:min")]
    constraint = parse_constraint("lat<=5")
    rows = np.array([[-0.95, 9.0], [-0.60, 4.0], [-0.50, 2.0], [-0.99, 5.5]])  # sign-adjusted
    for kind in REWARDS:
        engine = RewardEngine(kind=kind, objectives=objectives, constraints=[constraint])
        engine.set_reference(rows[1:3])
        violation = engine.violation({"lat": rows[:, 1]}, len(rows))
        assert violation.tolist() == [pytest.approx(0.8), 0.0, 0.0, pytest.approx(0.1)]
        for pref in ([1.0, 0.0], [0.5, 0.5], [0.0, 1.0]):
            reward = engine(rows, np.tile(pref, (len(rows), 1)), violation)
            # Every feasible network beats every infeasible one, the less infeasible first.
            assert min(reward[1], reward[2]) > reward[3] > reward[0], (kind, pref, reward)


def test_screening_keeps_candidates_within_the_constraint(nb201_csv):
    """With a latency bound, rounds after the random start propose mostly feasible networks."""
    table = TabularBenchmark(path=nb201_csv, space=SPACE)
    objectives = [parse_objective(o) for o in NB201_OBJECTIVES]
    bound = 3.0  # about 28 % of NB201 is this fast
    strategy = make_strategy(
        "rl",
        space=SPACE,
        objectives=objectives,
        constraints=[parse_constraint(f"lat_fpga_ms<={bound}")],
        seed=4,
    )
    metrics = [o.metric for o in objectives]
    specs = _drive(strategy, table, 40, metrics)
    lat = np.array(
        [table.query(SPACE.parse(s), ["lat_fpga_ms"])["lat_fpga_ms"].value for s in specs]
    )
    uniform = np.array(
        [table.query(g, ["lat_fpga_ms"])["lat_fpga_ms"].value for g in table.genotypes()]
    )
    assert 0.2 < (uniform <= bound).mean() < 0.8  # the bound cuts the space, not trivially
    # The best networks lie right at the bound, where the latency predictor errs both ways.
    chosen = (lat[10:] <= bound).mean()
    assert chosen >= 0.5 and chosen >= 2 * (uniform <= bound).mean(), chosen


def test_predictors_rank_held_out_nb201(nb201_csv):
    """After 100 real evaluations the predictors rank unseen NB201 networks (Kendall tau)."""
    table = TabularBenchmark(path=nb201_csv, space=SPACE)
    objectives = [parse_objective(o) for o in NB201_OBJECTIVES]
    strategy = make_strategy("rl", space=SPACE, objectives=objectives, seed=21)
    metrics = [o.metric for o in objectives]
    seen = set(_drive(strategy, table, 100, metrics))
    rng = np.random.default_rng(0)
    candidates = [g for g in table.genotypes() if g.spec not in seen]
    held_out = [candidates[i] for i in rng.choice(len(candidates), 1000, replace=False)]
    predicted = strategy.predict(held_out)
    for metric in metrics:
        true = [table.query(g, [metric])[metric].value for g in held_out]
        tau = kendalltau(predicted[metric], true)[0]
        assert tau >= 0.5, (metric, tau)


def test_predictors_pretrain_from_a_table(nb201_csv):
    objectives = [parse_objective(o) for o in NB201_OBJECTIVES]
    options = {"pretrain": str(nb201_csv), "pretrain_limit": 100}
    strategy = make_strategy("rl", space=SPACE, objectives=objectives, seed=2, options=options)
    table = TabularBenchmark(path=nb201_csv, space=SPACE)
    prior = {strategy.codec.genotype(row).spec for row in strategy._prior_idx}
    assert len(prior) == 100
    held_out = [g for g in table.genotypes()[::25] if g.spec not in prior]
    predicted = strategy.predict(held_out)  # before any evaluation of its own
    true = [table.query(g, ["acc_cifar10"])["acc_cifar10"].value for g in held_out]
    assert kendalltau(predicted["acc_cifar10"], true)[0] >= 0.5
    with pytest.raises(ConfigError, match="pretrain"):
        make_strategy("rl", space=SPACE, objectives=objectives, options={"pretrain": "/nowhere"})


def test_state_dict_round_trips_through_json(nb201_csv):
    table = TabularBenchmark(path=nb201_csv, space=SPACE)
    objectives = [parse_objective(o) for o in NB201_OBJECTIVES]
    metrics = [o.metric for o in objectives]
    a = make_strategy("rl", space=SPACE, objectives=objectives, seed=9)
    _drive(a, table, 25, metrics)
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    b = make_strategy("rl", space=SPACE, objectives=objectives, seed=9)
    b.known.update(a.known)
    b.load_state_dict(state)
    assert json.dumps(b.state_dict()) == json.dumps(state)
    probe = [SPACE.sample(np.random.default_rng(i)) for i in range(20)]
    np.testing.assert_array_equal(a.predict(probe)[metrics[0]], b.predict(probe)[metrics[0]])
    assert [c.key() for c in a.ask(5)] == [c.key() for c in b.ask(5)]


def test_resumed_run_continues_and_stores_kendall_tau(nb201_csv, tmp_path):
    common = dict(
        space="nb201",
        strategy="rl",
        benchmark=nb201_csv,
        objectives=NB201_OBJECTIVES,
        seed=5,
    )
    straight = hwnas.run_search(**common, budget=60, out=tmp_path / "straight")
    hwnas.run_search(**common, budget=30, out=tmp_path / "resumed")
    resumed = resume(tmp_path / "resumed", budget=60)
    specs = [t.genotype.spec for t in resumed.trials]
    assert len(specs) == len(set(specs)) == 60
    # The restored controller, predictors and generators make the very same choices.
    assert specs == [t.genotype.spec for t in straight.trials]
    rounds = [t.candidate.info["rl"].get("round", 0) for t in resumed.trials]
    assert max(rounds[30:]) > max(rounds[:30]) > 0
    with RunStore.open(tmp_path / "resumed", read_only=True) as store:
        events = store.events("predictor_quality")
        state = store.strategy_state()
    assert len(state["observations"]) == 60
    assert events and events[-1]["evaluations"] > 30
    taus = [e["kendall_tau"]["acc_cifar10"] for e in events if e["evaluations"] >= 40]
    assert taus and all(t is None or -1.0 <= t <= 1.0 for t in taus)
    assert np.nanmedian([np.nan if t is None else t for t in taus]) > 0.2


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="reward"):
        make_strategy(
            "rl",
            space=SPACE,
            objectives=[parse_objective("f:min")],
            options={"reward": "nonsense"},
        )
