"""Neural-Architect-style reinforcement learning with performance prediction (strategy ``rl``).

Each round: the performance-simulation networks (:mod:`rl_predictors`: an accuracy and a
resource head on a GRU embedding of the layer sequence, an ensemble) are refitted on every
real evaluation so far, and their Kendall tau on the evaluations they had not seen is logged.
The controller (:mod:`rl_controller`) transforms good observed networks, each rollout under
a preference vector the reward engine (:mod:`rl_reward`) scalarises with; the predicted
rewards train it by REINFORCE, and the real rewards of earlier rounds' candidates too. All
transformed networks, plus a few uniform samples for exploration, are screened
(:mod:`rl_acquisition`) by their expected hypervolume improvement under the predictors, and
only the best ``batch_size`` are really evaluated. Documentation: ``docs/rl.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hwnas.errors import ConfigError
from hwnas.objectives.base import Constraint, Objective, parse_objective
from hwnas.objectives.pareto import nondominated_mask
from hwnas.search.base import Strategy, StrategyResources
from hwnas.search.rl.controller import Controller, MovingBaseline
from hwnas.search.rl.ppo import PolicyUpdate
from hwnas.search.rl.predictors import Predictor
from hwnas.search.rl.prior import load_prior
from hwnas.search.rl.reward import (
    PREFERENCES,
    REWARDS,
    RewardEngine,
    default_preferences,
    is_quality,
)
from hwnas.search.rl.screening import ScreeningMixin
from hwnas.search.rl.state import generator_from_text, generator_to_text, one_thread
from hwnas.search.rl.tokens import SpaceCodec
from hwnas.spaces.base import CategoricalSpace, SearchSpace
from hwnas.types import Candidate, Genotype, Trial, TrialState


class RLSearch(ScreeningMixin, Strategy):
    """Controller + performance-simulation networks + reward engine (see ``docs/rl.md``)."""

    name = "rl"
    batch_size = 5

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        seed: int = 0,
        batch_size: int = 5,
        initial: int = 10,
        rollouts: int = 64,
        pg_steps: int = 2,
        reward: str = "tchebycheff",
        preferences: str = "das_dennis",
        random_fraction: float = 0.25,
        reference_margin: float = 0.1,
        preference_share: float = 0.4,
        exploration: float = 1.0,
        reference: str = "front",
        members: int = 5,
        hidden: int = 16,
        predictor_steps: int = 20,
        refit: float = 0.25,
        predictor_lr: float = 0.01,
        ridge_alpha: float = 1.0,
        pair_weight: float = 0.25,
        cheap_features: bool = True,
        controller_lr: float = 0.01,
        entropy_coef: float = 0.01,
        baseline_decay: float = 0.9,
        update: str = "reinforce",
        ppo_clip: float = 0.2,
        ppo_epochs: int = 4,
        expected_changes: float = 1.5,
        parent_pool: int = 3,
        mnasnet_beta: float = 0.07,
        tau_window: int = 30,
        pretrain: str | None = None,
        pretrain_limit: int = 500,
    ) -> None:
        super().__init__(space=space, objectives=objectives, constraints=constraints, seed=seed)
        if not isinstance(space, CategoricalSpace):
            raise ConfigError(
                f"strategy 'rl' needs a space of per-layer choices; '{space.name}' is not one"
            )
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, not {reward!r}")
        if preferences not in PREFERENCES:
            raise ValueError(f"preferences must be one of {', '.join(PREFERENCES)}")
        for key, value in (
            ("batch_size", batch_size),
            ("rollouts", rollouts),
            ("members", members),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if reference not in ("front", "observed"):
            raise ValueError(f"reference must be 'front' or 'observed', not {reference!r}")
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}")
        self.batch_size = int(batch_size)
        self.initial = max(int(initial), 2)
        self.rollouts = int(rollouts)
        self.pg_steps = int(pg_steps)
        self.random_fraction = float(random_fraction)
        self.reference_margin = float(reference_margin)
        self.preference_share = float(preference_share)
        self.exploration = float(exploration)
        self.reference = reference
        self._observed_z: np.ndarray | None = None
        self.predictor_steps = int(predictor_steps)
        if refit < 0:
            raise ValueError(f"refit must be >= 0, got {refit!r}")
        self.refit = float(refit)
        self.predictor_lr = float(predictor_lr)
        self.entropy_coef = float(entropy_coef)
        self.update = PolicyUpdate(
            kind=update, clip=ppo_clip, epochs=ppo_epochs, entropy_coef=self.entropy_coef
        )
        self.parent_pool = max(int(parent_pool), 1)
        self.tau_window = int(tau_window)
        self.members = int(members)
        self.preferences = preferences

        # Metrics predicted: the objectives, then constraint metrics that are not objectives.
        self.metrics = list(
            dict.fromkeys(
                [o.metric for o in self.objectives] + [c.metric for c in self.constraints]
            )
        )
        self._obj_cols = [self.metrics.index(o.metric) for o in self.objectives]
        self.signs = np.array([o.sign for o in self.objectives])
        quality = {o.metric for o in self.objectives if is_quality(o)}
        quality |= {m for m in self.metrics if m not in quality and is_quality(parse_objective(m))}
        self.roles = ["accuracy" if m in quality else "resource" for m in self.metrics]

        self._gen = torch.Generator().manual_seed(int(seed))
        with one_thread():
            self.codec = SpaceCodec(space, cheap_features=bool(cheap_features))
            self.predictor = Predictor(
                codec=self.codec,
                metrics=self.metrics,
                roles=self.roles,
                transforms=["rank" if r == "accuracy" else "standard" for r in self.roles],
                members=self.members,
                hidden=int(hidden),
                ridge_alpha=float(ridge_alpha),
                pair_weight=float(pair_weight),
                generator=self._gen,
            )
            self.controller = Controller(
                codec=self.codec,
                objectives=len(self.objectives),
                hidden=int(hidden),
                expected_changes=float(expected_changes),
                lr=float(controller_lr),
                generator=self._gen,
            )
        self.engine = RewardEngine(
            kind=reward,
            objectives=self.objectives,
            constraints=self.constraints,
            mnasnet_beta=float(mnasnet_beta),
        )
        self._prefs = default_preferences(len(self.objectives))
        self._pref_cursor = 0
        self.baseline = MovingBaseline(groups=len(self._prefs), decay=float(baseline_decay))
        self._round = 0
        # Every told evaluation: trial number, spec, raw metric values (NaN = missing), failed,
        # and its Bayesian bootstrap weight for each ensemble member.
        self._obs: list[tuple[int, str, list[float], bool, list[float]]] = []
        self._seen: set[str] = set()
        self._idx: list[np.ndarray] = []  # index row of each observation (not in the state)
        # Asked, not yet told: key -> (spec, parent spec or None, preference vector, round).
        self._pending: dict[str, tuple[str, str | None, list[float], int]] = {}
        # Told transformations whose real reward the controller has not yet learnt from.
        self._real: list[tuple[str, str, list[float]]] = []
        self._tau_pred: list[list[float]] = []
        self._tau_true: list[list[float]] = []
        # Pre-training data for the predictors (an earlier run or a table): rows and values.
        self._prior_idx = np.zeros((0, self.codec.positions), dtype=np.int64)
        self._prior_y = np.zeros((0, len(self.metrics)))
        if pretrain:
            genotypes, y = load_prior(
                str(pretrain),
                space=space,
                metrics=self.metrics,
                limit=int(pretrain_limit),
                seed=seed,
            )
            self._prior_idx, self._prior_y = self.codec.indices(genotypes), y
        # Positions in ``metrics`` computed exactly without training (see bind).
        self._exact: list[int] = []
        self._exact_cache: dict[str, list[float]] = {}
        #: Every predictor-quality event of this session (also handed out by drain_events).
        self.predictor_log: list[dict[str, Any]] = []

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        with one_thread():
            return self._ask(int(n))

    def tell(self, trials: Sequence[Trial]) -> None:
        for trial in trials:
            spec = trial.genotype.spec
            pending = self._pending.pop(trial.candidate.key(), None)
            if spec in self._seen or not trial.state.finished:
                continue
            failed = trial.state is not TrialState.COMPLETE
            values = [math.nan if failed else float(trial.value(m)) for m in self.metrics]
            weights = self.rng.exponential(size=self.members).tolist()
            self._obs.append((trial.number, spec, values, failed, weights))
            self._idx.append(self.space.to_indices(trial.genotype).astype(np.int64))
            self._seen.add(spec)
            if pending is not None and pending[1] is not None:
                self._real.append((pending[1], spec, pending[2]))

    def predict(self, genotypes: Sequence[Genotype]) -> dict[str, np.ndarray]:
        """The predictors' ensemble-mean estimate of each metric (in its unit) for
        ``genotypes``, after refitting on every evaluation told so far."""
        with one_thread():
            if len(self._prior_y) + sum(not failed for *_, failed, _ in self._obs) >= 2:
                self._refit(force=True)
            idx = self.codec.indices(list(genotypes))
            mean = self._with_exact(idx, self.predictor.predict(idx)).mean(axis=0)
        return {metric: mean[:, i] for i, metric in enumerate(self.metrics)}

    def _ask(self, n: int) -> list[Candidate]:
        told, in_flight = len(self._obs), len(self._pending)
        complete = sum(not failed for _, _, _, failed, _ in self._obs)
        if told + in_flight < self.initial:
            return self._random(min(n, self.initial - told - in_flight), "initial")
        if complete < 2:
            # The predictors need results: wait for the initial ones, or explore when failing.
            return [] if in_flight else self._random(n, "random")
        return self._model_round(n)

    # -- rounds ----------------------------------------------------------------------------
    def _random(self, n: int, source: str) -> list[Candidate]:
        rows = self.codec.sample(self.rng, 4 * n + 16)
        out = []
        for row in rows:
            genotype = self.codec.genotype(row)
            key = genotype.key()
            if key in self.known or key in self._pending or len(out) >= n:
                continue
            self._pending[key] = (genotype.spec, None, [], self._round)
            out.append(Candidate(genotype, info={"rl": {"source": source}}))
        return out

    def _model_round(self, n: int) -> list[Candidate]:
        self._round += 1
        self._refit()
        rows, violation, specs = self._observed()
        feasible = np.isfinite(rows).all(axis=1) & (violation == 0)
        self.engine.set_reference(
            rows[feasible] if feasible.any() else rows[np.isfinite(rows).all(axis=1)]
        )

        parents, children, prefs = self._train_controller(rows, violation, specs)
        pool_rows, sources = self._pool(parents, children)
        if len(pool_rows) == 0:
            return self._random(n, "random")
        on_front = (
            np.flatnonzero(feasible)[nondominated_mask(rows[feasible])] if feasible.any() else []
        )
        ok = rows[feasible]
        self._observed_z = (
            self.engine.normalise(ok[np.isfinite(ok).all(axis=1)]) if len(ok) else None
        )
        chosen = self._screen(pool_rows, self._index_rows(list(on_front)), n)
        out = []
        for i in chosen:
            genotype = self.codec.genotype(pool_rows[i])
            source = sources[i]
            parent = None if source < 0 else self.codec.genotype(parents[source]).spec
            pref = [] if source < 0 else [round(float(x), 6) for x in prefs[source]]
            self._pending[genotype.key()] = (genotype.spec, parent, pref, self._round)
            info = {"round": self._round, "source": "random" if source < 0 else "controller"}
            if parent is not None:
                info.update(parent=parent, preference=pref)
            out.append(Candidate(genotype, info={"rl": info}))
        return out

    def _observed(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Sign-adjusted objective rows (inf when failed), relative violations, specs."""
        values = np.array([v for _, _, v, _, _ in self._obs], dtype=float)
        values = values.reshape(len(self._obs), len(self.metrics))
        rows = values[:, self._obj_cols] * self.signs
        rows[~np.isfinite(rows)] = np.inf
        violation = self.engine.violation(
            {m: values[:, i] for i, m in enumerate(self.metrics)}, len(values)
        )
        return rows, violation, [s for _, s, _, _, _ in self._obs]

    def _refit(self, *, force: bool = False) -> None:
        """Log the predictors' quality on the evaluations they have not seen, then refit
        (warm, from the last fit) once the evaluations have grown by ``refit`` (a share) since
        the last fit, or always when ``force``d: most of a table search's time was refits
        that a few more rows barely change. The predictors are state, so a resumed run
        continues from the same ones."""
        usable = [o for o in self._obs if not o[3]]
        idx = self._index_rows([i for i, o in enumerate(self._obs) if not o[3]])
        y = np.array([o[2] for o in usable], dtype=float).reshape(len(usable), len(self.metrics))
        weights = np.array([o[4] for o in usable], dtype=float).reshape(-1, self.members).T
        if len(self._prior_idx):  # pre-training data first, so new rows stay at the end
            idx = np.concatenate([self._prior_idx, idx])
            y = np.concatenate([self._prior_y, y])
            weights = np.concatenate([np.ones((self.members, len(self._prior_y))), weights], 1)
        fitted = self.predictor.fitted
        if fitted == len(idx):
            return
        if not force and fitted > 0 and len(idx) - fitted < round(self.refit * fitted):
            return
        if fitted > 0:
            predicted = self.predictor.predict(idx[fitted:]).mean(axis=0)
            self._tau_pred.extend(predicted.tolist())
            self._tau_true.extend(y[fitted:].tolist())
            self._tau_pred = self._tau_pred[-self.tau_window :]
            self._tau_true = self._tau_true[-self.tau_window :]
            self._log_quality(len(idx) - fitted)
        steps = self.predictor_steps if fitted else 4 * self.predictor_steps
        self.predictor.fit(
            idx, y, weights, steps=steps, lr=self.predictor_lr, batch=64, generator=self._gen
        )

    def _log_quality(self, new: int) -> None:
        from scipy.stats import kendalltau

        pred, true = np.array(self._tau_pred), np.array(self._tau_true)
        taus: dict[str, float | None] = {}
        for i, metric in enumerate(self.metrics):
            ok = np.isfinite(true[:, i])
            tau = None
            if ok.sum() >= 4 and np.ptp(true[ok, i]) > 0 and np.ptp(pred[ok, i]) > 0:
                tau = float(kendalltau(pred[ok, i], true[ok, i])[0])
            taus[metric] = None if tau is None or math.isnan(tau) else round(tau, 4)
        event: dict[str, Any] = {
            "round": self._round,
            "evaluations": len(self._obs),
            "new": new,
            "window": len(true),
            "kendall_tau": taus,
        }
        for role in ("accuracy", "resource"):
            values = [
                t
                for m, r in zip(self.metrics, self.roles)
                if r == role
                for t in [taus[m]]
                if t is not None
            ]
            event[f"kendall_tau_{role}"] = round(float(np.mean(values)), 4) if values else None
        self.log_event("predictor_quality", **event)
        self.predictor_log.append(event)

    # -- training-free metrics -------------------------------------------------------------
    def bind(self, resources: StrategyResources) -> None:
        """Metrics the run computes without training (a latency lookup table, parameters)
        are taken exactly from :attr:`cheap` instead of predicted: route each metric as the
        run's evaluator does (first provider offering it) and keep those that are cheap."""
        super().bind(resources)
        exact = [m for m in self.metrics if m in resources.exact and self.cheap is not None]
        self._exact = [self.metrics.index(m) for m in exact]

    # -- controller ------------------------------------------------------------------------
    def _next_prefs(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        if self.preferences == "dirichlet":
            prefs = self.rng.dirichlet(np.ones(len(self.objectives)), size=count)
            return np.zeros(count, dtype=np.int64), prefs
        ids = (self._pref_cursor + np.arange(count)) % len(self._prefs)
        self._pref_cursor = int((self._pref_cursor + count) % len(self._prefs))
        return ids, self._prefs[ids]

    def _choose_parents(
        self, rows: np.ndarray, violation: np.ndarray, specs: list[str], prefs: np.ndarray
    ) -> np.ndarray:
        """For each preference, one of the ``parent_pool`` observed networks it rewards most."""
        usable = np.flatnonzero(np.isfinite(rows).all(axis=1))
        if len(usable) == 0:
            return self.codec.sample(self.rng, len(prefs))
        idx = self._index_rows(usable.tolist())
        parents = np.empty((len(prefs), self.codec.positions), dtype=np.int64)
        unique, inverse = np.unique(prefs, axis=0, return_inverse=True)
        for u, pref in enumerate(unique):
            reward = self.engine(
                rows[usable], np.repeat(pref[None], len(usable), 0), violation[usable]
            )
            top = np.argsort(-reward, kind="stable")[: self.parent_pool]
            members = np.flatnonzero(inverse.reshape(-1) == u)
            parents[members] = idx[top[self.rng.integers(len(top), size=len(members))]]
        return parents

    def _train_controller(
        self, rows: np.ndarray, violation: np.ndarray, specs: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """REINFORCE steps on predicted rewards (and last rounds' real ones); the rollouts."""
        all_parents, all_children, all_prefs = [], [], []
        for step in range(self.pg_steps):
            ids, prefs = self._next_prefs(self.rollouts)
            parents = self._choose_parents(rows, violation, specs, prefs)
            children = self.controller.sample(parents, prefs, self._gen)
            predicted, predicted_violation = self._predict_rows(children)
            reward = self.engine(predicted.mean(axis=0), prefs, predicted_violation.mean(axis=0))
            # A transformation into a network already evaluated (or back to the parent)
            # yields nothing new: the worst feasible reward, or the policy collapses onto
            # the few transformations it has already been rewarded for.
            reward = np.where(self._is_known(children), self.engine.floor, reward)
            if step == 0 and self._real:
                real_parents, real_children, real_prefs, real_reward = self._real_batch(
                    rows, violation, specs
                )
                parents = np.concatenate([parents, real_parents])
                children = np.concatenate([children, real_children])
                prefs_all = np.concatenate([prefs, real_prefs])
                ids_all = np.concatenate([ids, self._pref_ids(real_prefs)])
                reward_all = np.concatenate([reward, real_reward])
            else:
                prefs_all, ids_all, reward_all = prefs, ids, reward
            advantage = self.baseline.advantages(ids_all, reward_all)
            self.controller.reinforce(
                parents,
                children,
                prefs_all,
                advantage,
                entropy_coef=self.entropy_coef,
                update=self.update,
            )
            all_parents.append(parents[: self.rollouts])
            all_children.append(children[: self.rollouts])
            all_prefs.append(prefs)
        return np.concatenate(all_parents), np.concatenate(all_children), np.concatenate(all_prefs)

    def _is_known(self, rows: np.ndarray) -> np.ndarray:
        keys = [self.codec.genotype(row).key() for row in rows]
        return np.array([k in self.known or k in self._pending for k in keys], dtype=bool)

    def _real_batch(
        self, rows: np.ndarray, violation: np.ndarray, specs: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        position = {s: i for i, s in enumerate(specs)}
        real, self._real = self._real, []
        parents = self.codec.indices([self.space.parse(p) for p, _, _ in real])
        children = self.codec.indices([self.space.parse(c) for _, c, _ in real])
        prefs = np.array([w for _, _, w in real], dtype=float).reshape(len(real), -1)
        at = [position[c] for _, c, _ in real]
        return parents, children, prefs, self.engine(rows[at], prefs, violation[at])

    def _pref_ids(self, prefs: np.ndarray) -> np.ndarray:
        if self.preferences == "dirichlet":
            return np.zeros(len(prefs), dtype=np.int64)
        distance = np.abs(prefs[:, None, :] - self._prefs[None]).sum(axis=2)
        return distance.argmin(axis=1)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "torch_rng": generator_to_text(self._gen),
            "round": self._round,
            "pref_cursor": self._pref_cursor,
            "baseline": list(self.baseline.values),
            "observations": [
                [t, s, [None if math.isnan(x) else x for x in v], f, w]
                for t, s, v, f, w in self._obs
            ],
            "pending": [[k, *p] for k, p in self._pending.items()],
            "real": [list(r) for r in self._real],
            "tau": {"pred": _nulls(self._tau_pred), "true": _nulls(self._tau_true)},
            "predictor": self.predictor.state_dict(),
            "controller": self.controller.weights_text(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        generator_from_text(self._gen, state["torch_rng"])
        self._round = int(state["round"])
        self._pref_cursor = int(state["pref_cursor"])
        self.baseline.values = [None if b is None else float(b) for b in state["baseline"]]
        self._obs = [
            (int(t), s, [math.nan if x is None else float(x) for x in v], bool(f), list(w))
            for t, s, v, f, w in state["observations"]
        ]
        self._seen = {o[1] for o in self._obs}
        self._idx = [
            self.space.to_indices(self.space.parse(o[1])).astype(np.int64) for o in self._obs
        ]
        self._pending = {k: (s, p, list(w), int(r)) for k, s, p, w, r in state["pending"]}
        self._real = [(p, c, list(w)) for p, c, w in state["real"]]
        self._tau_pred = _nans(state["tau"]["pred"])
        self._tau_true = _nans(state["tau"]["true"])
        with one_thread():
            self.predictor.load_state_dict(state["predictor"])
            self.controller.load_weights_text(state["controller"])


def _nulls(rows: list[list[float]]) -> list[list[float | None]]:
    """NaN -> None: the state must be strict JSON."""
    return [[None if math.isnan(x) else x for x in row] for row in rows]


def _nans(rows: list[list[float | None]]) -> list[list[float]]:
    return [[math.nan if x is None else float(x) for x in row] for row in rows]
