"""How rl screens its candidates: predictions with the exact training-free metrics, the
candidate pool, and the expected-hypervolume-improvement choice (a mixin of RLSearch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.objectives.pareto import nondominated_mask
from hwnas.search.rl.acquisition import select_batch


class ScreeningMixin:
    """The screening half of :class:`~hwnas.search.rl.strategy.RLSearch` (its attributes)."""

    # Set by RLSearch.__init__ (see there).
    codec: Any
    metrics: list[str]
    members: int
    exploration: float
    predictor: Any
    engine: Any
    objectives: list[Any]
    known: set[str]
    rng: np.random.Generator
    cheap: Any
    random_fraction: float
    preference_share: float
    reference: str
    reference_margin: float
    signs: np.ndarray
    space: Any
    _obj_cols: list[int]
    _exact: list[int]
    _exact_cache: dict[str, list[float]]
    _idx: list[np.ndarray]
    _pending: dict[str, Any]
    _observed_z: np.ndarray | None

    def _next_prefs(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _with_exact(self, idx: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """``raw`` (K, N, metrics) predictions with the cheap metrics' exact values."""
        if not self._exact or len(idx) == 0:
            return raw
        names = [self.metrics[i] for i in self._exact]
        values = []
        for row in idx:
            genotype = self.codec.genotype(row)
            key = genotype.key()
            if key not in self._exact_cache:
                cheap = self.cheap(genotype, names)  # type: ignore[misc]
                self._exact_cache[key] = [cheap[m] for m in names]
            values.append(self._exact_cache[key])
        raw = raw.copy()
        raw[:, :, self._exact] = np.array(values, dtype=float)[None]
        return raw

    def _index_rows(self, positions: Sequence[int]) -> np.ndarray:
        if not positions:
            return np.zeros((0, self.codec.positions), dtype=np.int64)
        return np.stack([self._idx[i] for i in positions])

    def _predict_rows(
        self, idx: np.ndarray, explore: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per member: sign-adjusted objective rows (K, N, m) and relative violation (K, N);
        ``explore`` perturbs each member by posterior noise (see Predictor.predict)."""
        noise = None
        if explore and self.exploration > 0:
            noise = self.rng.standard_normal((self.members, len(idx), len(self.metrics)))
        raw = self._with_exact(idx, self.predictor.predict(idx, noise, self.exploration))
        rows = raw[:, :, self._obj_cols] * self.signs
        members, n, _ = raw.shape
        flat = raw.reshape(members * n, -1)
        violation = self.engine.violation(
            {m: flat[:, i] for i, m in enumerate(self.metrics)}, members * n
        ).reshape(members, n)
        return rows, violation

    # -- screening -------------------------------------------------------------------------
    def _pool(self, parents: np.ndarray, children: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Unique new candidates: the rollouts, then uniform samples; source rollout or -1."""
        extra = round(self.random_fraction * len(children))
        rows = np.concatenate([children, self.codec.sample(self.rng, extra)])
        sources = list(range(len(children))) + [-1] * extra
        keep, seen = [], set()
        for i, row in enumerate(rows):
            key = self.codec.genotype(row).key()
            if key in seen or key in self.known or key in self._pending:
                continue
            seen.add(key)
            keep.append(i)
        return rows[keep], [sources[i] for i in keep]

    def _screen(self, pool: np.ndarray, front_idx: np.ndarray, n: int) -> list[int]:
        """Pick ``n`` of ``pool`` by expected hypervolume improvement.

        Each member's candidates are compared with that member's own predictions for the
        observed front networks, not with their measured values: a regression predicts
        towards the mean, so against measured values nothing would ever look better than the
        best network seen, and the front would stop growing at its ends.
        """
        predicted, violation = self._predict_rows(pool, explore=True)
        norm = self.engine.normalise
        m = len(self.objectives)
        z = norm(predicted)
        front = norm(self._predict_rows(front_idx)[0]) if len(front_idx) else np.zeros((0, m))
        fantasies = None
        if self._pending:
            idx = self.codec.indices([self.space.parse(p[0]) for p in self._pending.values()])
            fantasies = norm(self._predict_rows(idx)[0])
        ref = self._reference(front.reshape(-1, m), z, violation)
        by_reward = min(round(self.preference_share * n), n - 1) if n > 1 else 0
        chosen = select_batch(z, violation == 0, front, ref, n - by_reward, fantasies)
        # The rest by predicted reward under the next preference vectors: the most accurate
        # candidate, the cheapest, and between, whether or not the ensemble expects it to
        # beat the front (a regression rarely predicts beyond the best seen).
        mean_rows, mean_violation = predicted.mean(axis=0), violation.mean(axis=0)
        for _ in range(by_reward):
            _, prefs = self._next_prefs(1)
            reward = self.engine(mean_rows, np.repeat(prefs, len(pool), 0), mean_violation)
            reward[chosen] = -np.inf
            if np.isfinite(reward).any():
                chosen.append(int(np.argmax(reward)))
        return chosen

    def _reference(self, front: np.ndarray, z: np.ndarray, violation: np.ndarray) -> np.ndarray:
        """Reference point: the nadir of the observed front joined with the predicted one,
        plus ``reference_margin`` of its span.

        The observed front's own nadir would hide every candidate beyond it (a network more
        accurate than all seen is usually also slower than all seen), so the front can only
        grow at its ends if the reference covers where the predictions say it continues.
        """
        mean = z.mean(axis=0)[(violation == 0).mean(axis=0) >= 0.5]
        points = np.vstack([front, mean]) if len(front) else mean
        if len(points) == 0:
            return np.full(z.shape[-1], 1.0 + self.reference_margin)
        joined = points[nondominated_mask(points)]
        nadir, ideal = joined.max(axis=0), joined.min(axis=0)
        ref = nadir + self.reference_margin * np.maximum(nadir - ideal, 1e-9)
        if self.reference == "observed" and self._observed_z is not None:
            ref = np.maximum(ref, self._observed_z.max(axis=0))
        return ref
