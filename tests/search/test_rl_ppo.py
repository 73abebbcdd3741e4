"""PPO's clipped update, the ENAS LSTM controller, and PPO state in the rl strategy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.evaluate.table import TabularBenchmark
from hwnas.objectives.base import parse_objective
from hwnas.search import make_strategy
from hwnas.search.rl.controller import MovingBaseline
from hwnas.search.rl.lstm import LSTMController
from hwnas.search.rl.ppo import PolicyUpdate, clipped_surrogate, policy_update
from hwnas.search.rl.state import one_thread
from hwnas.spaces import make_space
from hwnas.types import Trial, TrialState

SPACE = make_space("nb201")


def _bandit(update: PolicyUpdate, advantage: float) -> float:
    """A 2-action policy at p = 0.5 updated on 8 samples of action 0 with one advantage;
    returns pi_new(0) / pi_old(0)."""
    logits = torch.nn.Parameter(torch.zeros(2))
    optimiser = torch.optim.SGD([logits], lr=0.1)
    actions = torch.zeros(8, dtype=torch.long)

    def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(logits, 0)
        return logp[actions], torch.zeros(8)

    old = float(torch.softmax(logits.detach(), 0)[0])
    policy_update(evaluate, torch.full((8,), advantage), optimiser=optimiser,
                  parameters=[logits], update=update)  # fmt: skip
    return float(torch.softmax(logits.detach(), 0)[0]) / old


@pytest.mark.parametrize("advantage", [1.0, -1.0])
def test_ppo_clipping_limits_the_step_of_many_epochs(advantage):
    clip = 0.2
    ppo = PolicyUpdate(kind="ppo", clip=clip, epochs=60, entropy_coef=0.0)
    loose = PolicyUpdate(kind="ppo", clip=0.99, epochs=60, entropy_coef=0.0)
    ratio, unclipped = _bandit(ppo, advantage), _bandit(loose, advantage)
    # Each step moves the ratio by well under 0.2 here, so the clipped update stops within
    # one step past the clip boundary; without clipping the same 60 epochs go much further.
    if advantage > 0:
        assert 1 + clip <= ratio < 1 + 2 * clip, ratio
        assert unclipped > 1.8, unclipped  # pi(0) -> 1, so the ratio -> 2
    else:
        assert 1 - 2 * clip < ratio <= 1 - clip, ratio
        assert unclipped < 0.2, unclipped
    # A single REINFORCE step moves less than the clip allows: PPO took several epochs.
    assert abs(_bandit(PolicyUpdate(entropy_coef=0.0), advantage) - 1) < abs(ratio - 1)


def test_clipped_surrogate_has_no_gradient_beyond_the_clip_in_the_favoured_direction():
    logp = torch.log(torch.tensor([0.3, 0.55, 0.6, 0.3])).requires_grad_()
    old = torch.log(torch.tensor([0.2, 0.5, 0.3, 0.6]))  # ratios 1.5, 1.1, 2.0, 0.5
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, share = clipped_surrogate(logp, old, adv, 0.2)
    loss.backward()
    grad = logp.grad.numpy()
    # 1.5 with A>0: clipped, no push further up; 1.1 is inside the clip range;
    # 2.0 with A<0: the unclipped term is the minimum, so it is pushed back down;
    # 0.5 with A<0: clipped below, no push further down.
    assert grad[0] == 0.0 and grad[3] == 0.0
    assert grad[1] < 0 and grad[2] > 0
    assert float(share) == pytest.approx(0.75)


def test_policy_update_options_are_checked():
    with pytest.raises(ValueError, match="update must be one of reinforce, ppo"):
        PolicyUpdate(kind="a2c")
    with pytest.raises(ValueError, match="ppo_clip"):
        PolicyUpdate(kind="ppo", clip=1.5)
    with pytest.raises(ValueError, match="ppo_epochs"):
        PolicyUpdate(kind="ppo", epochs=0)


@pytest.mark.parametrize("kind", ["reinforce", "ppo"])
def test_lstm_controller_expected_reward_rises_to_a_known_optimum(kind):
    """The reward has a known optimum per preference: the controller finds both."""
    cards = [5] * 6
    optimum = {0: np.array([3, 1, 3, 0, 2, 3]), 1: np.array([0, 4, 4, 2, 1, 0])}
    prefs_of = np.array([[1.0, 0.0], [0.0, 1.0]])
    rule = PolicyUpdate(kind=kind, entropy_coef=0.001, epochs=4, clip=0.2)
    controller = LSTMController(cards=cards, objectives=2, lr=0.02, seed=0, update=rule)
    generator = torch.Generator().manual_seed(0)

    def reward(ids: np.ndarray, archs: np.ndarray) -> np.ndarray:
        return np.array([(a == optimum[int(i)]).mean() for i, a in zip(ids, archs)])

    def expected() -> float:
        ids = np.repeat([0, 1], 128)
        return float(reward(ids, controller.sample(prefs_of[ids], generator)).mean())

    before = expected()
    baseline = MovingBaseline(groups=2, decay=0.9)
    with one_thread():
        for _ in range(80):
            ids = np.repeat([0, 1], 16)
            archs = controller.sample(prefs_of[ids], generator)
            controller.learn(prefs_of[ids], archs, baseline.advantages(ids, reward(ids, archs)))
    after = expected()
    # A uniform policy matches 1 in 5 choices; learnt, most choices match.
    assert before < 0.35 and after > 0.75, (before, after)
    np.testing.assert_array_equal(controller.greedy(prefs_of), np.stack([optimum[0], optimum[1]]))


def test_lstm_controller_respects_each_positions_choices():
    controller = LSTMController(cards=[2, 7, 1, 3], objectives=3, seed=1)
    archs = controller.sample(np.full((200, 3), 1 / 3), torch.Generator().manual_seed(0))
    assert (archs.max(axis=0) < np.array([2, 7, 1, 3])).all() and (archs >= 0).all()
    assert archs[:, 1].max() == 6  # every choice of a position is reachable


def _drive(strategy, table, evaluations: int, metrics) -> None:
    told = 0
    while told < evaluations:
        asked = strategy.ask(min(strategy.batch_size, evaluations - told))
        assert asked
        trials = []
        for c in asked:
            strategy.known.add(c.key())
            values = table.query(c.genotype, metrics)
            trials.append(Trial(told + len(trials), c, TrialState.COMPLETE, values))
        told += len(trials)
        strategy.tell(trials)


def test_rl_with_ppo_state_round_trips_and_differs_from_reinforce(nb201_csv):
    table = TabularBenchmark(path=nb201_csv, space=SPACE)
    objectives = [parse_objective(o) for o in ["acc_cifar10:max", "lat_fpga_ms:min"]]
    metrics = [o.metric for o in objectives]
    options = {"update": "ppo", "ppo_epochs": 3, "rollouts": 32, "initial": 6}
    a = make_strategy("rl", space=SPACE, objectives=objectives, seed=4, options=options)
    _drive(a, table, 16, metrics)
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    b = make_strategy("rl", space=SPACE, objectives=objectives, seed=4, options=options)
    b.known.update(a.known)
    b.load_state_dict(state)
    assert json.dumps(b.state_dict()) == json.dumps(state)
    assert [c.key() for c in a.ask(5)] == [c.key() for c in b.ask(5)]
    # The controller's weights after PPO's epochs differ from REINFORCE's single steps.
    c = make_strategy("rl", space=SPACE, objectives=objectives, seed=4,
                      options={**options, "update": "reinforce"})  # fmt: skip
    _drive(c, table, 16, metrics)
    assert c.state_dict()["controller"] != state["controller"]
