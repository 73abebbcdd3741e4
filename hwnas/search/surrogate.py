"""A small surrogate of expensive objectives, and hypervolume-improvement batch selection.

Used by strategies that generate many candidates cheaply and can afford to evaluate few (the
surrogate-assisted acceptance of LEMONADE). Features are the space's fixed-length encoding plus
training-free costs; the model is a least-squares fit of an additive cost (latency tables and
hardware cost models sum per-layer costs, so it predicts them almost exactly after a few dozen
evaluations) plus an ensemble of randomised trees on what it leaves, whose spread across trees
gives an uncertainty. Everything is refitted from the evaluated trials, so it has no state of its
own to save: a resumed strategy refits it from the same data and makes the same choices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwnas.objectives.pareto import hypervolume, nondominated_mask


class TreeSurrogate:
    """Mean and spread of each objective: a linear fit (``linear=True``) plus an extra-trees
    ensemble (scikit-learn) on its residuals."""

    def __init__(self, *, n_estimators: int = 64, seed: int = 0, linear: bool = True) -> None:
        self.n_estimators = n_estimators
        self.linear = linear
        self.seed = seed
        self._models: list = []
        self._linear: list[np.ndarray] = []  # weights and intercept of each objective

    def fit(self, X: np.ndarray, Y: np.ndarray) -> TreeSurrogate:
        from sklearn.ensemble import ExtraTreesRegressor

        self._models, self._linear = [], []
        for j in range(Y.shape[1]):
            y = Y[:, j]
            linear = _ridge(X, y) if self.linear else np.zeros(X.shape[1] + 1)
            self._linear.append(linear)
            y = y - (X @ linear[:-1] + linear[-1])
            model = ExtraTreesRegressor(
                n_estimators=self.n_estimators,
                min_samples_leaf=1,
                random_state=self.seed + j,
                n_jobs=1,
            )
            self._models.append(model.fit(X, y))
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) per candidate and objective."""
        means, stds = [], []
        for model, linear in zip(self._models, self._linear):
            per_tree = np.stack([tree.predict(X) for tree in model.estimators_])
            means.append(per_tree.mean(axis=0) + X @ linear[:-1] + linear[-1])
            stds.append(per_tree.std(axis=0))
        return np.stack(means, axis=1), np.stack(stds, axis=1)


def greedy_hvi(
    front: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    lower: np.ndarray,
    upper: np.ndarray,
    reference: float = 1.1,
) -> list[int]:
    """Indices of up to ``k`` candidates that add the most hypervolume, chosen one at a time.

    All rows are minimised; ``lower``/``upper`` normalise each column. After a pick, that
    candidate joins the front, so the batch spreads instead of piling onto one spot. Stops early
    when no remaining candidate adds anything.
    """
    span = np.where(upper > lower, upper - lower, 1.0)
    Z = (candidates - lower) / span
    current = (front - lower) / span if len(front) else np.empty((0, candidates.shape[1]))
    ref = np.full(candidates.shape[1], reference)
    base = hypervolume(current, ref) if len(current) else 0.0
    chosen: list[int] = []
    available = np.ones(len(Z), dtype=bool)
    for _ in range(min(k, len(Z))):
        gains = np.full(len(Z), -1.0)
        for i in np.flatnonzero(available):
            gains[i] = hypervolume(np.vstack([current, Z[i]]), ref) - base
        best = int(np.argmax(gains))
        if gains[best] <= 1e-12:
            break
        chosen.append(best)
        available[best] = False
        current = np.vstack([current, Z[best]])
        current = current[nondominated_mask(current)]
        base += gains[best]
    return chosen


def features(encodings: Sequence[np.ndarray], cheap: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(encodings, dtype=float), np.asarray(cheap, dtype=float)])


def _ridge(X: np.ndarray, y: np.ndarray, alpha: float = 1e-3) -> np.ndarray:
    """Least-squares weights and intercept (last entry), lightly regularised."""
    mean_x, mean_y = X.mean(axis=0), y.mean()
    Xc = X - mean_x
    w = np.linalg.solve(Xc.T @ Xc + alpha * len(X) * np.eye(X.shape[1]), Xc.T @ (y - mean_y))
    return np.append(w, mean_y - mean_x @ w)
