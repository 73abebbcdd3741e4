"""LEMONADE: Lamarckian evolution for multi-objective NAS (Elsken, Metzen and Hutter, ICLR 2019).

Each generation:
1. fit a kernel density estimate (KDE) on the population's *cheap* objectives (params, MACs,
   lookup-table latency ...: anything computed without training);
2. draw ``n_pc`` parents with probability inversely proportional to that density, so sparse
   regions of the front get more offspring;
3. make one child per parent by a random (approximate) network morphism, or in tabular mode a
   mutation standing in for one;
4. compute the children's cheap objectives and accept ``n_ac`` of them, again inversely
   proportional to the density, without replacement;
5. train / evaluate only those (the *expensive* objectives); the population becomes the Pareto
   front of everything evaluated, over cheap and expensive objectives together.

The budget counts evaluations only; cheap objectives are free.

Two modes. *Morphisms* (``mode="auto"`` when the space has network morphisms, see
:mod:`hwnas.morphisms`, and the run trains on a dataset): the initial population is trained
from scratch (``initial_epochs``); each child is a random (approximate) morphism of its parent,
starts from the parent's trained weights carried through it (``Candidate.parent`` and a
``{"kind": "morphism", ...}`` transfer; approximate ones add ``"distill"``, knowledge
distillation from the parent) and trains for ``epochs_per_child``. A generation is proposed
only when the previous one is fully evaluated, as in the paper. *Mutations* (tabular tables,
or spaces without morphisms): mutations stand in for morphisms and nothing is inherited.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.evaluate.cheap import CheapEvaluator
from hwnas.objectives.pareto import (
    hypervolume_bounds,
    nondominated_mask,
    normalised_hypervolume,
)
from hwnas.search.base import Strategy
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Trial, TrialState

# Training-free proxies used for the density when no objective is cheap (tabular mode).
DEFAULT_CHEAP = ("params", "macs")


class LemonadeSearch(Strategy):
    """Lamarckian multi-objective evolution with density-guided parent and child selection."""

    name = "lemonade"
    batch_size = 8

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Any],
        constraints: Sequence[Any] = (),
        seed: int = 0,
        initial_population: int = 10,
        initial_pool: int = 200,
        n_pc: int = 64,
        n_ac: int = 8,
        bandwidth: float | str = "scott",
        cheap_metrics: Sequence[str] | None = None,
        max_mutations: int = 1,
        epochs_per_child: float | None = None,
        acceptance: str = "auto",
        explore: float = 0.25,
        optimism: float = 1.0,
        mode: str = "auto",
        initial_epochs: float | None = None,
        distill: float = 0.5,
        morphisms: Sequence[str] | None = None,
        trees: int = 32,
    ) -> None:
        super().__init__(space=space, objectives=objectives, constraints=constraints, seed=seed)
        if initial_population < 1 or n_pc < 1 or not 1 <= n_ac <= n_pc:
            raise ValueError("need initial_population >= 1 and 1 <= n_ac <= n_pc")
        if not (bandwidth == "scott" or (isinstance(bandwidth, (int, float)) and bandwidth > 0)):
            raise ValueError("bandwidth must be 'scott' or a positive number")
        if acceptance not in ("auto", "density", "surrogate"):
            raise ValueError(
                "acceptance must be 'density' (the paper's), 'surrogate' or 'auto' (surrogate "
                "with mutations, density with morphisms)"
            )
        if mode not in ("auto", "morphisms", "mutations"):
            raise ValueError("mode must be 'auto', 'morphisms' or 'mutations'")
        if not 0.0 <= distill <= 1.0:
            raise ValueError("distill must be a weight between 0 and 1 (0: no distillation)")
        for name, epochs in (
            ("epochs_per_child", epochs_per_child),
            ("initial_epochs", initial_epochs),
        ):
            if epochs is not None and not epochs > 0:
                raise ValueError(f"{name} must be a positive number of epochs")
        if not 0.0 <= explore <= 1.0:
            raise ValueError("explore must be between 0 and 1")
        self.initial_population = initial_population
        self.initial_pool = max(initial_pool, initial_population)
        self.n_pc, self.n_ac = n_pc, n_ac
        self.bandwidth = bandwidth
        self.cheap_metrics_option = list(cheap_metrics) if cheap_metrics else None
        self.max_mutations = max_mutations
        self.epochs_per_child = epochs_per_child
        self.acceptance = acceptance
        self.explore = explore
        self.optimism = optimism
        if trees < 1:
            raise ValueError("trees must be a positive number")
        self.trees = trees
        self.mode = mode
        self.initial_epochs = initial_epochs
        self.distill = distill
        self.morphism_names = list(morphisms) if morphisms else None
        self.batch_size = n_ac  # type: ignore[misc]
        # State (all JSON): every evaluated member, the queue of accepted children, counters.
        self._evaluated: dict[str, dict[str, Any]] = {}  # spec -> {trial, F, cheap}
        self._queue: list[dict[str, Any]] = []  # accepted, not yet handed out
        self._generation = 0
        self._outstanding: list[str] = []  # handed out, not yet told
        self._logged = 0  # the last generation whose event was logged
        self._hv_box: list[list[float]] | None = None  # fixed normalisation of the events' HV
        self._weights: bool | None = None  # the mode, decided at the first ask
        # Not state: a pure function of the spec, recomputed after a resume.
        self._cheap_rows: dict[str, list[float]] = {}

    def check_space(self) -> None:
        from hwnas.morphisms import get_morphism, has_morphisms

        if self.mode == "morphisms" and not has_morphisms(self.space):
            raise ConfigError(
                f"space '{self.space.name}' has no network morphisms; use mode=mutations or "
                "a space with morphisms (chain, mobilenet)"
            )
        for name in self.morphism_names or []:
            get_morphism(self.space, name)

    @property
    def uses_morphisms(self) -> bool:
        """True when children come from morphisms and inherit weights (see the docstring)."""
        if self._weights is None:
            from hwnas.morphisms import has_morphisms

            if self.mode == "auto":
                trains = self.resources.trains
                self._weights = trains and has_morphisms(self.space)
            else:
                self._weights = self.mode == "morphisms"
        return self._weights

    # -- cheap objectives ------------------------------------------------------------------
    def _cheap(self) -> CheapEvaluator:
        if self.cheap is None:
            self.cheap = CheapEvaluator.for_space(self.space)
        return self.cheap

    def cheap_metrics(self) -> list[str]:
        """The metrics of the density: cheap objectives if any, else params and MACs."""
        if self.cheap_metrics_option:
            return self.cheap_metrics_option
        units = self._cheap().units()
        chosen = [o.metric for o in self.objectives if o.metric in units]
        return chosen or [m for m in DEFAULT_CHEAP if m in units]

    def _cheap_row(self, genotype: Genotype) -> list[float]:
        row = self._cheap_rows.get(genotype.spec)
        if row is None:
            metrics = self.cheap_metrics()
            values = self._cheap()(genotype, metrics)
            row = self._cheap_rows[genotype.spec] = [_scale(values[m]) for m in metrics]
        return list(row)

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        weights = self.uses_morphisms
        if not self._queue:
            if weights and self._outstanding:
                return []  # a generation starts once the previous one is evaluated
            self._queue = self._next_generation()
        chunk, self._queue = self._queue[:n], self._queue[n:]
        candidates = [self._candidate(item) for item in chunk]
        if weights:  # never wait for a result the runner would not produce
            candidates = [c for c in candidates if c.key() not in self.known]
        self._outstanding += [c.genotype.spec for c in candidates]
        return candidates

    def _candidate(self, item: dict[str, Any]) -> Candidate:
        parent = item.get("parent_trial")
        info = {"generation": item["generation"], "parent_spec": item.get("parent_spec")}
        genotype = self.space.parse(item["spec"])
        if self.uses_morphisms:
            transfer = item.get("transfer")
            fidelity = self.epochs_per_child if transfer else self.initial_epochs
            return Candidate(
                genotype,
                parent=parent if transfer else None,
                transfer=transfer,
                fidelity=fidelity,
                info=info,
            )
        return Candidate(
            genotype,
            parent=parent if self.epochs_per_child is not None else None,
            transfer=item.get("transfer"),
            fidelity=self.epochs_per_child,
            info=info,
        )

    def tell(self, trials: Sequence[Trial]) -> None:
        for trial in trials:
            if trial.genotype.spec in self._outstanding:
                self._outstanding.remove(trial.genotype.spec)
            if trial.state is not TrialState.COMPLETE or self.violation(trial) > 0:
                self._evaluated.setdefault(trial.genotype.spec, {"trial": trial.number, "F": None})
                continue
            row = self.objective_row(trial)
            self._evaluated[trial.genotype.spec] = {
                "trial": trial.number,
                "F": row.tolist() if np.isfinite(row).all() else None,
                "cheap": self._cheap_row(trial.genotype),
            }
        if not self._outstanding and not self._queue and self._logged < self._generation:
            population = self.population()
            if population:
                self._log_generation(population)

    # -- generations -----------------------------------------------------------------------
    def population(self) -> list[str]:
        """Specs of the Pareto front of everything evaluated (cheap and expensive objectives)."""
        members = [(s, e) for s, e in self._evaluated.items() if e.get("F") is not None]
        if not members:
            return []
        F = np.array([e["F"] + e["cheap"] for _, e in members], dtype=float)
        mask = nondominated_mask(F)
        return [members[i][0] for i in np.flatnonzero(mask)]

    def _next_generation(self) -> list[dict[str, Any]]:
        population = self.population()
        self._generation += 1
        if not population:
            return self._initial_generation()
        points = np.array([self._evaluated[s]["cheap"] for s in population])
        density = _Density(points, self.bandwidth)
        parents = self.sample_parents(points, self.n_pc, density)
        children: dict[str, dict[str, Any]] = {}
        for index in parents:
            spec = population[int(index)]
            child, transfer = self._child(self.space.parse(spec))
            if child is None or child.spec in children:
                continue
            children[child.spec] = {
                "spec": child.spec,
                "parent_spec": spec,
                "parent_trial": self._evaluated[spec]["trial"],
                "generation": self._generation,
            }
            if transfer is not None:
                children[child.spec]["transfer"] = transfer
        if not children:
            return self._initial_generation()
        items = list(children.values())
        cheap = np.array([self._cheap_row(self.space.parse(i["spec"])) for i in items])
        take = min(self.n_ac, len(items))
        chosen: list[int] = []
        acceptance = self.acceptance
        if acceptance == "auto":
            acceptance = "density" if self.uses_morphisms else "surrogate"
        if acceptance == "surrogate":
            exploit = take - round(self.explore * take)
            chosen = self._surrogate_choice(items, cheap, exploit)
        rest = [i for i in range(len(items)) if i not in chosen]
        if take > len(chosen):  # the surrogate may have chosen them all
            weights = 1.0 / density(cheap[rest])
            chosen += [
                rest[int(i)]
                for i in self.rng.choice(
                    len(rest), size=take - len(chosen), replace=False, p=weights / weights.sum()
                )
            ]
        return [items[i] for i in chosen]

    def sample_parents(
        self, points: np.ndarray, n: int, density: _Density | None = None
    ) -> np.ndarray:
        """Indices of ``n`` parents among the rows of ``points`` (cheap objectives), drawn
        with replacement with probability inversely proportional to their density."""
        density = density or _Density(points, self.bandwidth)
        weights = 1.0 / density(points)
        return self.rng.choice(len(points), size=n, p=weights / weights.sum())

    def _surrogate_choice(
        self, items: list[dict[str, Any]], cheap: np.ndarray, k: int
    ) -> list[int]:
        """Children with the largest optimistic predicted hypervolume improvement.

        An extension of the paper's density-only acceptance: a tree ensemble fitted on every
        evaluation predicts the expensive objectives of the children; cheap objectives are
        exact. Returns fewer than ``k`` (the rest is chosen by density) when little is known
        or nothing is predicted to improve the front.
        """
        from hwnas.search.surrogate import TreeSurrogate, features, greedy_hvi

        done = [(s, e) for s, e in self._evaluated.items() if e.get("F") is not None]
        if k <= 0 or len(done) < 8:
            return []
        encode = self.space.predictor_features
        X = features([encode(self.space.parse(s)) for s, _ in done], [e["cheap"] for _, e in done])
        F = np.array([e["F"] for _, e in done], dtype=float)
        Xc = features([encode(self.space.parse(i["spec"])) for i in items], cheap)
        # Objectives the run computes without training are exact for the children; only the
        # others are predicted (fewer tree fits, and no error where there need be none).
        units = self._cheap().units()
        exact = [j for j, o in enumerate(self.objectives) if o.metric in units]
        predicted = [j for j in range(F.shape[1]) if j not in exact]
        mean, std = np.empty((len(items), F.shape[1])), np.zeros((len(items), F.shape[1]))
        if predicted:
            surrogate = TreeSurrogate(
                n_estimators=self.trees, seed=self.seed * 1000 + self._generation
            ).fit(X, F[:, predicted])
            mean[:, predicted], std[:, predicted] = surrogate.predict(Xc)
        if exact:
            metrics = [self.objectives[j].metric for j in exact]
            signs = np.array([self.objectives[j].sign for j in exact])
            values = [self._cheap()(self.space.parse(i["spec"]), metrics) for i in items]
            mean[:, exact] = signs * np.array([[v[m] for m in metrics] for v in values])
        optimistic = mean - self.optimism * std
        front = F[nondominated_mask(F)]
        return greedy_hvi(front, optimistic, k, lower=F.min(axis=0), upper=F.max(axis=0))

    def _child(self, parent: Genotype) -> tuple[Genotype | None, dict[str, Any] | None]:
        """A random neighbour not evaluated or asked before, and its weight transfer: a random
        (approximate) morphism, or a mutation standing in for one (no transfer)."""
        for _ in range(20):
            steps = int(self.rng.integers(1, self.max_mutations + 1))
            transfer = None
            if self.uses_morphisms:
                from hwnas.morphisms import propose_transfer

                proposal = propose_transfer(
                    self.space,
                    parent,
                    self.rng,
                    names=self.morphism_names,
                    steps=steps,
                    distill=self.distill,
                )
                if proposal is None:
                    return None, None
                child, transfer = proposal
                key = Candidate(child, fidelity=self.epochs_per_child).key()
            else:
                child = parent
                for _ in range(steps):
                    child = self.space.mutate(child, self.rng)
                key = child.key()
            if key not in self.known and child.spec not in self._evaluated:
                return child, transfer
        return None, None

    def _initial_generation(self) -> list[dict[str, Any]]:
        """Spread the first members over the cheap objectives (farthest-point selection)."""
        pool: dict[str, Genotype] = {}
        for _ in range(self.initial_pool * 3):
            g = self.space.sample(self.rng)
            if g.key() not in self.known and g.spec not in self._evaluated:
                pool.setdefault(g.spec, g)
            if len(pool) >= self.initial_pool:
                break
        if not pool:
            return []
        specs = list(pool)
        X = np.array([self._cheap_row(pool[s]) for s in specs])
        X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        chosen = [int(self.rng.integers(len(specs)))]
        distance = np.linalg.norm(X - X[chosen[0]], axis=1)
        while len(chosen) < min(self.initial_population, len(specs)):
            nxt = int(np.argmax(distance))
            chosen.append(nxt)
            distance = np.minimum(distance, np.linalg.norm(X - X[nxt], axis=1))
        return [{"spec": specs[i], "generation": self._generation} for i in chosen]

    def _log_generation(self, population: list[str]) -> None:
        """Event ``generation``: the population after a generation, and its normalised
        hypervolume (the one definition, in [0, 1]) over the bounds of all trials evaluated so
        far, as the progress line shows; the bounds are in the event."""
        F = np.array([self._evaluated[s]["F"] for s in population], dtype=float)
        seen = [e["F"] for e in self._evaluated.values() if e.get("F") is not None]
        bounds = hypervolume_bounds(np.array(seen, dtype=float)) if seen else None
        ideal, nadir = bounds if bounds is not None else (F.min(axis=0), F.max(axis=0))
        self._hv_box = [ideal.tolist(), nadir.tolist()]
        self.log_event(
            "generation",
            generation=self._generation,
            evaluated=len(seen),
            population=len(population),
            members=sorted(int(self._evaluated[s]["trial"]) for s in population),
            hypervolume=normalised_hypervolume(F, ideal, nadir),
            hypervolume_bounds={"ideal": self._hv_box[0], "nadir": self._hv_box[1]},
        )
        self._logged = self._generation

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "evaluated": self._evaluated,
            "queue": self._queue,
            "generation": self._generation,
            "outstanding": self._outstanding,
            "logged": self._logged,
            "hv_box": self._hv_box,
            "weights": self._weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._evaluated = {k: dict(v) for k, v in state["evaluated"].items()}
        self._queue = [dict(i) for i in state["queue"]]
        self._generation = int(state["generation"])
        self._outstanding = list(state.get("outstanding", []))
        self._logged = int(state.get("logged", 0))
        self._hv_box = state.get("hv_box")
        self._weights = state.get("weights")


def _scale(value: float) -> float:
    """Costs span orders of magnitude: compare them on a log scale."""
    return math.log10(value) if value > 0 else value


class _Density:
    """Gaussian KDE on standardised points (numpy; deterministic; works for 1 point)."""

    def __init__(self, points: np.ndarray, bandwidth: float | str) -> None:
        self.mean = points.mean(axis=0)
        std = points.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        self.points = (points - self.mean) / self.std
        n, d = self.points.shape
        self.h = n ** (-1.0 / (d + 4)) if bandwidth == "scott" else float(bandwidth)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(x) - self.mean) / self.std
        sq = ((z[:, None, :] - self.points[None, :, :]) ** 2).sum(axis=2) / self.h**2
        return np.exp(-0.5 * sq).mean(axis=1) + 1e-12
