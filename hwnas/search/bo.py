"""Multi-objective Bayesian optimisation with a neural predictor ensemble (after BANANAS).

White, Neiswanger and Savani, "BANANAS: Bayesian optimization with neural architectures for
neural architecture search" (AAAI 2021), made multi-objective:

1. the first ``initial`` candidates are uniform random samples;
2. then, for every batch of ``batch`` proposals: an ensemble of small networks
   (:class:`hwnas.surrogates.mlp.MLPEnsemble`, refit once the evaluations have grown by
   ``refit``) on the space's predictor features (NB201: the path encoding) predicts every
   objective that needs an evaluation; objectives the run can compute without training
   (``self.cheap``: params, MACs, a latency lookup table, a table's device columns) are
   computed exactly, never predicted; a candidate that computes the same function as an
   evaluated one (``space.function_key``) has a known outcome, and is never proposed when the
   front weakly dominates it;
3. build a pool of candidates by mutating the members of the current front (one or two steps)
   plus uniform random samples, and pick the batch by expected hypervolume improvement over
   the front, one at a time, with the kriging believer (:mod:`hwnas.search.bo_acquisition`).
   Candidates in flight (a parallel executor) count as believed front points.

Its state is the evaluated rows, the queue and the random generator; the predictors are refit
from the rows with seeds derived from the fit count, so a resumed run proposes what an
uninterrupted one does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hwnas.evaluate.cheap import CheapEvaluator
from hwnas.objectives.pareto import nondominated_mask
from hwnas.search.base import Strategy
from hwnas.search.bo_acquisition import ACQUISITIONS, select_batch
from hwnas.search.rl.reward import is_quality
from hwnas.spaces.base import CategoricalSpace, SearchSpace
from hwnas.surrogates.mlp import MLPEnsemble
from hwnas.types import Candidate, Genotype, Trial, TrialState

_FEATURE_CACHE = 50_000  # genotypes whose features / function keys are kept
_QUALITY_EVERY = 20  # told proposals per predictor_quality event


class BOSearch(Strategy):
    """BANANAS-style multi-objective BO: neural ensemble, EHVI, mutation + random pool."""

    name = "bo"
    batch_size = 2

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Any],
        constraints: Sequence[Any] = (),
        seed: int = 0,
        initial: int = 10,
        batch: int = 2,
        acquisition: str = "its",
        mutations: int = 50,
        random_samples: int = 10,
        members: int = 5,
        hidden: int = 32,
        steps: int = 100,
        exhaustive: int = 0,
        refit: float = 0.05,
    ) -> None:
        super().__init__(space=space, objectives=objectives, constraints=constraints, seed=seed)
        if initial < 1 or batch < 1 or members < 1 or hidden < 1 or steps < 1:
            raise ValueError("initial, batch, members, hidden and steps must be positive")
        if mutations < 0 or random_samples < 0 or mutations + random_samples < 1:
            raise ValueError("mutations and random_samples must be >= 0, not both 0")
        self.initial, self.batch = initial, batch
        self.mutations, self.random_samples = mutations, random_samples
        self.members, self.hidden, self.steps = members, hidden, steps
        self.exhaustive = exhaustive
        if refit < 0:
            raise ValueError("refit must be >= 0")
        self.refit = refit
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {', '.join(ACQUISITIONS)}")
        self.acquisition = acquisition
        self.batch_size = batch  # type: ignore[misc]
        # State (JSON): evaluated rows in the order told, proposals not yet handed out,
        # proposals handed out and not yet told, and the number of predictor fits so far.
        self._rows: dict[str, list[float] | None] = {}  # spec -> signed objectives or None
        self._queue: list[str] = []
        self._outstanding: list[str] = []
        self._fits = 0
        self._fit_told = 0  # told rows (a prefix of _rows) the current predictors saw
        self._model: MLPEnsemble | None = None  # refit from state on resume
        self._features: dict[str, np.ndarray] = {}
        self._functions: dict[str, str] = {}  # spec -> the space's function key
        # Predictor quality (events only, not state): expected rows of proposals not yet
        # told, and (expected, measured) pairs not yet logged.
        self._expected: dict[str, list[float]] = {}
        self._pairs: list[tuple[list[float], list[float]]] = []
        self._everything: list[str] | None = None  # every spec of a small space
        self._linear = 0  # leading feature columns that are the space's encoding
        self._cheap_names: list[str] | None = None

    # -- what the run gives ----------------------------------------------------------------
    def _cheap_metrics(self) -> list[str]:
        """Objective metrics the run computes without training (used exactly)."""
        if self._cheap_names is None:
            if self.cheap is None:
                self.cheap = CheapEvaluator.for_space(self.space)
            units = self.cheap.units()
            self._cheap_names = [o.metric for o in self.objectives if o.metric in units]
        return self._cheap_names

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        self._queue = [s for s in self._queue if self.space.parse(s).key() not in self.known]
        if not self._queue:
            self._queue = self._propose(max(1, min(n, self.batch)))
        chunk, self._queue = self._queue[:n], self._queue[n:]
        self._outstanding += chunk
        return [Candidate(self.space.parse(s)) for s in chunk]

    def tell(self, trials: Sequence[Trial]) -> None:
        for trial in trials:
            spec = trial.genotype.spec
            if spec in self._outstanding:
                self._outstanding.remove(spec)
            row = self.objective_row(trial)
            ok = trial.state is TrialState.COMPLETE and np.isfinite(row).all()
            self._rows[spec] = row.tolist() if ok else None
            if ok and self.violation(trial) > 0:
                self._rows[spec] = None  # infeasible: no front member, no training row
            expected = self._expected.pop(spec, None)
            if ok and expected is not None:
                self._pairs.append((expected, row.tolist()))
        if len(self._pairs) >= _QUALITY_EVERY:
            self._log_quality()

    def _log_quality(self) -> None:
        """Event ``predictor_quality``: Kendall tau between predicted and measured values of
        the last proposals, which no predictor had seen, per expensive objective; averaged
        into ``kendall_tau_accuracy`` (quality objectives) and ``kendall_tau_resource``."""
        from scipy.stats import kendalltau

        expected = np.array([p for p, _ in self._pairs])
        measured = np.array([m for _, m in self._pairs])
        self._pairs = []
        cheap = self._cheap_metrics()
        taus: dict[str, float] = {}
        for j, o in enumerate(self.objectives):
            if o.metric not in cheap and np.ptp(measured[:, j]) > 0:
                taus[o.metric] = round(float(kendalltau(expected[:, j], measured[:, j])[0]), 4)
        roles: dict[str, list[float]] = {"accuracy": [], "resource": []}
        for o in self.objectives:
            if o.metric in taus and np.isfinite(taus[o.metric]):
                roles["accuracy" if is_quality(o) else "resource"].append(taus[o.metric])
        self.log_event(
            "predictor_quality",
            evaluations=sum(r is not None for r in self._rows.values()),
            proposals=len(expected),
            kendall_tau=taus,
            **{
                f"kendall_tau_{role}": round(float(np.mean(v)), 4) if v else None
                for role, v in roles.items()
            },
        )

    # -- proposals -------------------------------------------------------------------------
    def _propose(self, q: int) -> list[str]:
        done = [(s, r) for s, r in self._rows.items() if r is not None]
        if len(done) < self.initial:
            return self._random(q, self._taken())
        taken = self._taken()
        pool = self._pool(done, taken)
        if not pool:
            return self._random(q, taken)
        flight = [s for s in self._outstanding if s not in self._rows]
        predicted, known = self._predict([s for s, _ in done], pool + flight)
        samples, believed = predicted[:, : len(pool)], predicted[:, len(pool) :].mean(axis=0)
        F = np.array([r for _, r in done], dtype=float)
        front = F[nondominated_mask(F)]
        # A candidate whose outcome is known (same function as an evaluated one) and that
        # the front weakly dominates would teach nothing and add nothing: never propose it
        # (it would otherwise win ties at zero improvement, being on the front).
        useless = known[: len(pool)] & _weakly_dominated(samples[0], front)
        if useless.all():
            return self._random(q, taken)
        if useless.any():
            keep = np.flatnonzero(~useless)
            pool, samples = [pool[i] for i in keep], samples[:, keep]
        ideal, nadir = front.min(axis=0), front.max(axis=0)
        flat = nadir <= ideal
        ideal = np.where(flat, F.min(axis=0), ideal)
        nadir = np.where(flat, F.max(axis=0), nadir)
        chosen = select_batch(
            np.vstack([front, believed]) if len(believed) else front,
            samples,
            min(q, len(pool)),
            ideal=ideal,
            nadir=nadir,
            rng=self.rng,
            acquisition=self.acquisition,
        )
        for i in chosen:  # what the predictors expect, to log their quality (see tell)
            self._expected[pool[i]] = samples[:, i].mean(axis=0).tolist()
        return [pool[i] for i in chosen]

    def _taken(self) -> set[str]:
        return set(self._rows) | set(self._outstanding) | set(self._queue)

    def _random(self, q: int, taken: set[str]) -> list[str]:
        out: list[str] = []
        avoid = self.known | {Genotype(self.space.name, s).key() for s in taken}  # keys
        for _ in range(q):
            g = self.draw_new(lambda: self.space.sample(self.rng), avoid=avoid)
            if g is None:
                break
            avoid.add(g.key())
            out.append(g.spec)
        return out

    def _pool(self, done: list[tuple[str, list[float]]], taken: set[str]) -> list[str]:
        """Mutations of the front's members (one or two steps), then random samples; only
        genotypes never asked."""
        F = np.array([r for _, r in done], dtype=float)
        parents = [done[i][0] for i in np.flatnonzero(nondominated_mask(F))]
        pool: dict[str, None] = {}
        known = self.known
        if self._everything is None:
            self._everything = _enumerate(self.space, self.exhaustive)
        if self._everything:  # small space: score every architecture not yet asked
            name = self.space.name
            return [
                s
                for s in self._everything
                if s not in taken and Genotype(name, s).key() not in known
            ]

        def add(g: Genotype) -> None:
            if g.spec not in taken and g.key() not in known:
                pool.setdefault(g.spec)

        for i in range(self.mutations):
            child = self.space.parse(parents[i % len(parents)])
            for _ in range(1 + int(self.rng.random() < 0.5)):
                child = self.space.mutate(child, self.rng)
            add(child)
        for _ in range(self.random_samples):
            add(self.space.sample(self.rng))
        return list(pool)

    def _predict(self, train: list[str], pool: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(members, candidates, objectives), signed for minimisation, cheap columns exact;
        and which candidates compute the same function as an evaluated architecture."""
        cheap = self._cheap_metrics()
        m = len(self.objectives)
        out = np.empty((self.members, len(pool), m))
        known = np.zeros(len(pool), dtype=bool)
        expensive = [j for j, o in enumerate(self.objectives) if o.metric not in cheap]
        if expensive:
            Y = np.array([self._rows[s] for s in train], dtype=float)[:, expensive]
            model = self._predictors(expensive)
            out[:, :, expensive] = model.predict(self._matrix(pool))
            # A candidate computing the same function as an evaluated one has a known
            # outcome (its mean over evaluations): every member agrees, so duplicates add
            # hypervolume only through their exact cheap objectives (a cheaper copy).
            seen: dict[str, list[np.ndarray]] = {}
            for spec, row in zip(train, Y):
                seen.setdefault(self._function(spec), []).append(row)
            for i, spec in enumerate(pool):
                rows = seen.get(self._function(spec))
                if rows is not None:
                    out[:, i, expensive] = np.mean(rows, axis=0)[None, :]
                    known[i] = True
        for j, o in enumerate(self.objectives):
            if o.metric in cheap:
                assert self.cheap is not None
                exact = [
                    o.sign * self.cheap(self.space.parse(s), [o.metric])[o.metric] for s in pool
                ]
                out[:, :, j] = np.array(exact)[None, :]
        return out, known

    def _predictors(self, expensive: list[int]) -> MLPEnsemble:
        """The ensemble for the expensive objectives, refit once the told rows have grown by
        ``refit`` (a share) since the last fit, and at least by a batch. Between refits
        proposals differ through the front, the believer and Thompson draws; the predictors
        are a pure function of a prefix of the told rows and the fit count, so a resumed run
        rebuilds exactly the ones an uninterrupted run has."""
        told = len(self._rows)
        if self._fit_told == 0 or told - self._fit_told >= max(
            self.batch, round(self.refit * self._fit_told)
        ):
            self._fits += 1
            self._fit_told = told
            self._model = None
        if self._model is None:
            prefix = itertools.islice(self._rows.items(), self._fit_told)
            train = [s for s, r in prefix if r is not None]
            X = self._matrix(train)
            Y = np.array([self._rows[s] for s in train], dtype=float)[:, expensive]
            model = MLPEnsemble(
                members=self.members,
                hidden=self.hidden,
                steps=self.steps,
                seed=int(self.seed) * 100_003 + self._fits,
            )
            # Fitted on the signed rows; a quality objective's ranks, a cost's values.
            modes = ["rank" if is_quality(self.objectives[j]) else "standard" for j in expensive]
            self._model = model.fit(X, Y, modes, linear_columns=self._linear)
        return self._model

    def _function(self, spec: str) -> str:
        return _memo(self._functions, spec, lambda: self.space.function_key(self.space.parse(spec)))

    def _matrix(self, specs: Sequence[str]) -> np.ndarray:
        return np.array(
            [
                _memo(self._features, s, lambda s=s: self._featurise(self.space.parse(s)))
                for s in specs
            ]
        )

    def _featurise(self, genotype: Genotype) -> np.ndarray:
        """The encoding (one-hot choices, where costs add up) followed by the rest of the
        predictor features (NB201: the path encoding), without repeating the encoding."""
        code = self.space.encode(genotype).astype(np.float32)
        extra = self.space.predictor_features(genotype).astype(np.float32)
        self._linear = len(code)
        if len(extra) >= len(code) and np.array_equal(extra[: len(code)], code):
            return extra
        return np.concatenate([code, extra])

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "rows": self._rows,
            "queue": self._queue,
            "outstanding": self._outstanding,
            "fits": self._fits,
            "fit_told": self._fit_told,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._rows = {
            str(k): (None if v is None else [float(x) for x in v]) for k, v in state["rows"].items()
        }
        self._queue = [str(s) for s in state["queue"]]
        self._outstanding = [str(s) for s in state["outstanding"]]
        self._fits = int(state["fits"])
        self._fit_told = int(state.get("fit_told", 0))
        self._model = None


def _memo(cache: dict[str, Any], spec: str, make: Callable[[], Any]) -> Any:
    """``cache[spec]``, made by ``make`` when missing; a full cache is emptied first (its
    values are pure functions of the spec)."""
    value = cache.get(spec)
    if value is None:
        if len(cache) >= _FEATURE_CACHE:
            cache.clear()
        value = cache[spec] = make()
    return value


def _weakly_dominated(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` (n, m) some row of ``front`` is at least as good as in every
    objective (minimised)."""
    return (front[None, :, :] <= points[:, None, :]).all(axis=2).any(axis=1)


def _enumerate(space: SearchSpace, limit: int) -> list[str]:
    """Every spec of a categorical space with at most ``limit`` architectures, else []."""
    if not isinstance(space, CategoricalSpace) or space.size() > limit:
        return []
    ranges = [range(c) for c in space.cardinalities()]
    return [space.from_indices(idx).spec for idx in itertools.product(*ranges)]
