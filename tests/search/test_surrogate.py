"""The tree surrogate of LEMONADE's acceptance and its hypervolume-improvement batch choice."""

from __future__ import annotations

import numpy as np

from hwnas.search.surrogate import TreeSurrogate, greedy_hvi
from hwnas.spaces import make_space


def test_additive_costs_are_predicted_exactly_and_the_rest_by_trees() -> None:
    # Latency tables and lookup tables sum per-layer costs: the linear part gets them exactly
    # from few evaluations, which trees alone cannot.
    space = make_space("nb201")
    rng = np.random.default_rng(0)
    genotypes = {g.spec: g for g in (space.sample(rng) for _ in range(400))}
    X = np.array([space.encode(g) for g in genotypes.values()], dtype=float)
    per_choice = rng.uniform(0.1, 1.0, X.shape[1])
    additive = X @ per_choice + 2.0
    interaction = 3.0 * X[:, 3] * X[:, 8]  # non-additive part
    Y = np.stack([additive, additive + interaction], axis=1)
    train, test = slice(0, 120), slice(120, None)

    mean, std = TreeSurrogate(seed=1).fit(X[train], Y[train]).predict(X[test])
    trees_only, _ = TreeSurrogate(seed=1, linear=False).fit(X[train], Y[train]).predict(X[test])

    assert (np.abs(mean[:, 0] - Y[test, 0]) / Y[test, 0]).max() < 0.005
    assert (
        np.abs(trees_only[:, 0] - Y[test, 0]).mean() > 20 * np.abs(mean[:, 0] - Y[test, 0]).mean()
    )
    error = np.abs(mean[:, 1] - Y[test, 1]).mean()
    assert error < np.abs(trees_only[:, 1] - Y[test, 1]).mean()
    assert error < np.abs(Y[test, 1] - Y[train, 1].mean()).mean()
    assert std.shape == mean.shape and (std >= 0).all()


def test_greedy_hvi_spreads_the_batch_and_skips_dominated_candidates() -> None:
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    candidates = np.array(
        [
            [0.5, 0.5],  # fills the gap in the middle
            [0.5, 0.51],  # dominated once the first is chosen
            [0.2, 0.8],
            [2.0, 2.0],  # dominated by the front
        ]
    )
    chosen = greedy_hvi(front, candidates, 3, lower=np.zeros(2), upper=np.ones(2))
    assert chosen == [0, 2]  # stops early: nothing else adds hypervolume
