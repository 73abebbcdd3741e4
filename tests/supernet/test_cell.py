"""The nb201 cell supernet with one-hot edge weights is the stand-alone network, bit for bit."""

import pytest
import torch

from hwnas.spaces.nb201 import OPS, NB201Space
from hwnas.supernet.cell import CellSupernet, one_hot

SPECS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
]
SIZE = {"channels": 4, "cells_per_stage": 1}


@pytest.fixture(scope="module")
def space():
    return NB201Space(**SIZE)


def _supernet(seed: int = 3) -> CellSupernet:
    torch.manual_seed(seed)
    return CellSupernet(num_classes=10, in_channels=1, **SIZE)


@pytest.mark.parametrize("spec", SPECS)
def test_one_hot_cell_supernet_equals_standalone_network(space, spec):
    supernet = _supernet()
    genotype = space.parse(spec)
    weights = supernet.one_hot(genotype)
    assert weights.shape == (6, 5) and torch.equal(weights.sum(1), torch.ones(6))
    x = torch.randn(6, 1, 16, 16)
    supernet.train()
    with torch.no_grad():  # train-mode steps give the BatchNorm running statistics values
        supernet(x, weights)
        supernet(x * 2 + 1, weights)
    network = space.build(genotype, num_classes=10, in_channels=1)
    network.load_state_dict(supernet.extract_state(genotype), strict=True)
    for mode in (False, True):  # eval: running statistics; train: batch statistics
        supernet.train(mode)
        network.train(mode)
        with torch.no_grad():
            assert torch.equal(supernet(x, weights), network(x)), mode
    # Another cell computes another function: the comparison can fail.
    other = space.parse(SPECS[0] if spec != SPECS[0] else SPECS[4])
    supernet.eval()
    network.eval()
    with torch.no_grad():
        assert not torch.equal(supernet(x, supernet.one_hot(other)), network(x))


def test_one_hot_runs_only_the_chosen_operation(space):
    supernet = _supernet()
    genotype = space.parse(SPECS[1])
    called: list[str] = []
    for cell in supernet.cells:
        for edge in getattr(cell, "layers", []):
            if hasattr(edge, "ops"):
                for name, op in zip(OPS, edge.ops):
                    op.register_forward_hook(lambda *_, name=name: called.append(name))
    supernet(torch.randn(2, 1, 16, 16), one_hot(space, genotype))
    # 3 mixed cells x 6 edges, each running exactly the genotype's operation.
    assert sorted(called) == sorted(space.choices(genotype) * 3)


def test_soft_weights_mix_every_operation_and_carry_gradients():
    supernet = _supernet()
    alpha = torch.randn(6, 5, requires_grad=True)
    out = supernet(torch.randn(3, 1, 16, 16), torch.softmax(alpha, dim=-1))
    out.logsumexp(1).sum().backward()
    assert alpha.grad is not None and torch.isfinite(alpha.grad).all()
    assert (alpha.grad.abs().sum(1) > 0).all()  # every edge's weights get a gradient
    # Zero weights skip their operations: a row with two non-zero entries runs two.
    weights = torch.zeros(6, 5)
    weights[:, 3] = 1.0
    weights[0] = torch.tensor([0.0, 0.5, 0.0, 0.5, 0.0])
    supernet.eval()
    with torch.no_grad():
        two = supernet(torch.ones(1, 1, 8, 8), weights)
        conv = supernet(torch.ones(1, 1, 8, 8), torch.eye(5)[[3] * 6])
    assert two.shape == (1, 10) and not torch.equal(two, conv)


def test_bad_edge_weights_raise():
    supernet = _supernet()
    with pytest.raises(ValueError, match="shape"):
        supernet(torch.randn(1, 1, 8, 8), torch.ones(5, 5))
    weights = torch.zeros(6, 5)
    weights[:5, 1] = 1.0
    with pytest.raises(ValueError, match="all zero"):
        supernet(torch.randn(1, 1, 8, 8), weights)
