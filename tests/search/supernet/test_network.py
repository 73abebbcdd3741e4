"""The supernet with one-hot theta is the stand-alone network; gradients reach theta."""

import pytest
import torch
from supernet_helpers import SMALL, classification_task

from hwnas.search.supernet.costs import CostSet, counted_terms
from hwnas.search.supernet.losses import FBNetLoss, PenaltyLoss, SNASLoss, TargetLoss
from hwnas.search.supernet.network import Supernet, extract_state
from hwnas.search.supernet.relax import relax
from hwnas.spaces.mobilenet import MobileNetSpace


@pytest.fixture(scope="module")
def space():
    return MobileNetSpace(**SMALL)


def _supernet(space, task, seed=3):
    torch.manual_seed(seed)
    return Supernet(space, head=task.make_head(), in_channels=task.in_channels)


@pytest.mark.parametrize(
    "spec",
    ["ir_k3_e1-ir_k5_e6-skip", "ir_k5_e1_g2-ir_k3_e3-ir_k3_e1_g2", "ir_k3_e6-ir_k5_e3-ir_k5_e6"],
)
def test_one_hot_supernet_equals_standalone_network(space, digits, spec):
    task = classification_task(space, digits)
    supernet = _supernet(space, task)
    # Train-mode steps give the BatchNorm statistics of the path non-trivial values.
    x = torch.randn(6, 1, 16, 16)
    genotype = space.parse(spec)
    weights, active = supernet.one_hot(genotype)
    supernet.train()
    supernet(x, weights, active)
    network = task.build(genotype)
    network.load_state_dict(extract_state(supernet.state_dict(), space, genotype), strict=True)
    for mode in (False, True):  # eval: running statistics; train: batch statistics
        supernet.train(mode)
        network.train(mode)
        with torch.no_grad():
            assert torch.equal(supernet(x, weights, active), network(x))
    # Another path gives another function: the comparison can fail.
    other = space.parse("ir_k3_e3-ir_k3_e1-ir_k3_e1")
    assert not torch.equal(supernet(x, *supernet.one_hot(other)), network(x))


@pytest.mark.parametrize(
    ("kind", "paths", "make_loss"),
    [
        ("gumbel", "full", lambda: FBNetLoss(alpha=0.2, beta=0.6)),
        ("gumbel", "two", lambda: TargetLoss(target=1.5, penalty=2.0, fraction=0.3)),
        ("gumbel", "one", lambda: FBNetLoss(alpha=0.2, beta=0.6)),
        ("softmax", "full", lambda: PenaltyLoss(lam=0.5)),
        ("gumbel", "full", lambda: SNASLoss(lam=0.5)),
    ],
)
def test_gradients_reach_every_layers_theta(space, digits, kind, paths, make_loss):
    task = classification_task(space, digits)
    supernet = _supernet(space, task)
    costs = CostSet(counted_terms(task, ["macs"]))
    theta = [torch.randn(n, requires_grad=True) for n in supernet.num_choices]
    r = relax(theta, kind=kind, paths=paths, temperature=1.0,
              generator=torch.Generator().manual_seed(0))  # fmt: skip
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    task_loss = task.loss(supernet(x, r.mix, r.active), y)
    loss = make_loss()(task_loss, costs.normalised(r.cost), relaxed=r, theta=theta, costs=costs)
    loss.backward()
    for layer, logits in enumerate(theta):
        assert logits.grad is not None, f"layer {layer}"
        assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0, f"layer {layer}"
    if paths != "full":  # path sampling runs only the sampled candidates
        assert all(len(a) == {"two": 2, "one": 1}[paths] for a in r.active)


def test_low_temperature_approaches_a_one_hot_sample(space):
    theta = [torch.zeros(n) for n in (8, 9, 8)]
    cold = relax(theta, kind="gumbel", paths="full", temperature=0.01,
                 generator=torch.Generator().manual_seed(1))  # fmt: skip
    hot = relax(theta, kind="gumbel", paths="full", temperature=100.0,
                generator=torch.Generator().manual_seed(1))  # fmt: skip
    for c, h, hard in zip(cold.mix, hot.mix, cold.hard):
        assert float(c[hard]) > 0.99 and float(h.max()) < 0.2
        assert int(torch.argmax(h)) == hard  # the same noise: the same winner
