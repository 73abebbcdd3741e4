"""The collapse metric, the SDARTS-RS perturbation and the ranking statistics, on constructed cases."""

import pytest
import torch

from hwnas.search.supernet.collapse import collapse_stats, collapse_trend
from hwnas.search.supernet.ranking import kendall_tau, ranking_summary, top_k_overlap
from hwnas.search.supernet.robust import perturb, robust_epsilon
from hwnas.spaces import make_space
from hwnas.spaces.nb201 import OPS


def test_collapse_counts_skips_and_parameter_free_operations_of_a_cell():
    space = make_space("nb201")
    cell = ["skip_connect", "skip_connect", "none", "nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1"]
    stats = collapse_stats(space.options(), [OPS.index(op) for op in cell])
    assert stats.skip_share == pytest.approx(2 / 6)
    assert stats.parameter_free_share == pytest.approx(4 / 6)  # two skips, none, pooling
    assert stats.positions == 6
    convs = collapse_stats(space.options(), [OPS.index("nor_conv_3x3")] * 6)
    assert convs.skip_share == convs.parameter_free_share == 0.0
    assert collapse_trend([0.0, 1 / 6, 0.5]) == pytest.approx(0.5)


def test_collapse_on_mobilenet_layers_and_bad_input():
    space = make_space("mobilenet", {"stages": [[8, 1, 1], [16, 1, 2]], "head_channels": 32})
    options = space.options()
    skip = [len(o) - 1 if o[-1] == "skip" else 0 for o in options]  # skip where a slot has it
    stats = collapse_stats(options, skip)
    allowed = sum(o[-1] == "skip" for o in options)
    assert allowed >= 1
    assert stats.skip_share == stats.parameter_free_share == pytest.approx(allowed / len(options))
    with pytest.raises(ValueError, match="one chosen index per position"):
        collapse_stats(options, [0])


def test_sdarts_perturbation_stays_within_epsilon_on_the_active_candidates():
    generator = torch.Generator().manual_seed(0)
    mix = [torch.tensor([0.2, 0.3, 0.5, 0.0]), torch.tensor([0.0, 1.0, 0.0, 0.0])]
    active = [[0, 1, 2], [1]]
    out = perturb(mix, active, 0.1, generator)
    for before, after, chosen in zip(mix, out, active):
        change = after - before
        assert change.abs().max() <= 0.1
        inactive = [j for j in range(4) if j not in chosen]
        assert torch.all(change[inactive] == 0)  # path sampling still runs only its paths
        assert torch.all(change[chosen] != 0)
    # The bound grows from 0.03 to the maximum over the epochs; no remedy, no noise.
    assert robust_epsilon("sdarts-rs", 0.3, 0, 5) == pytest.approx(0.03)
    assert robust_epsilon("sdarts-rs", 0.3, 4, 5) == pytest.approx(0.3)
    assert robust_epsilon("none", 0.3, 4, 5) == 0.0


def test_kendall_tau_and_top_k_overlap():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # One discordant pair of six: (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [1, 2, 2, 3, 5, 4, 4], [2, 1, 3, 3, 6, 4, 5]
    assert kendall_tau(a, b) == pytest.approx(scipy_stats.kendalltau(a, b).statistic)
    assert top_k_overlap([5, 4, 3, 2, 1], [1, 4, 5, 3, 2], k=2) == pytest.approx(0.5)
    summary = ranking_summary([1, 2, 3], [1, 1, 1])
    assert summary["kendall_tau"] is None and summary["n"] == 3  # constant scores: no ranking


def test_handoff_orders_by_predicted_rank_then_spread():
    import numpy as np

    from hwnas.search.supernet.handoff import crowding_distance, handoff_order

    # Rows 0-3 are the predicted front (row 2 in its crowded middle), row 4 is dominated.
    F = np.array([[0.0, 4.0], [1.0, 3.0], [1.1, 2.9], [4.0, 0.0], [2.0, 4.0]])
    order = handoff_order(F)
    assert order[-1] == 4
    assert set(order[:2]) == {0, 3}  # the ends of the front first (infinite crowding)
    assert order[2:4] == [1, 2] or order[2:4] == [2, 1]
    distance = crowding_distance(F[:4])
    assert np.isinf(distance[[0, 3]]).all() and np.isfinite(distance[[1, 2]]).all()
    assert handoff_order(np.zeros((0, 2))) == []
