"""NSGA-II (Deb et al., 2002) through pymoo's ask/tell interface, with the space's own operators.

Decision variables are the genotypes' canonical strings (one object-typed variable), so the
same strategy searches every space: sampling, crossover and mutation call the space, and
duplicates are detected by genotype key, against the population and against everything this
run has asked before. The state (population with its objectives, ranks and crowding, the
generation being evaluated and pymoo's random state) is plain JSON, so a run resumes exactly.

With parallel executors the runner asks again before a generation is complete. Generational
NSGA-II would leave workers idle until the slowest member returns; with ``steady_state`` (the
default) such an ask breeds offspring from everything evaluated so far (the population plus the
generation's finished members), and their results join the survival at the end of the
generation. The local executor never asks early, so its runs are unchanged and reproducible;
``steady_state=False`` makes a parallel run propose exactly what a local run proposes.

Defaults (population 10, crossover always, mutation of half the offspring) are set for runs
of a few hundred evaluations, where every evaluation is a training run: with 20 members
and every child mutated (the earlier defaults) a 100-evaluation run made only four
generations of children that strayed a full mutation from their parents, and trailed pymoo's
stock NSGA-II (whose integer mutation leaves many children unchanged); see docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.evaluator import Evaluator
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.problems.static import StaticProblem

from hwnas.search.base import Strategy
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Trial

# pymoo needs finite numbers: failed trials get this value and count as infeasible.
_FAILED = 1e30


class NSGA2Search(Strategy):
    """Generational NSGA-II; ``ask`` hands out the current generation's offspring, and breeds
    steady-state offspring when asked while the generation is still being evaluated."""

    name = "nsga2"
    batch_size = 10

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Any],
        constraints: Sequence[Any] = (),
        seed: int = 0,
        population_size: int = 10,
        crossover_prob: float = 1.0,
        mutation_prob: float = 0.5,
        steady_state: bool = True,
    ) -> None:
        super().__init__(space=space, objectives=objectives, constraints=constraints, seed=seed)
        if population_size < 2:
            raise ValueError("population_size must be at least 2")
        self.population_size = population_size
        self.steady_state = steady_state
        self._problem = Problem(n_var=1, n_obj=len(self.objectives), n_ieq_constr=1, vtype=object)
        self._algorithm = NSGA2(
            pop_size=population_size,
            sampling=_SpaceSampling(space),
            crossover=_SpaceCrossover(space, crossover_prob),
            mutation=_SpaceMutation(space, mutation_prob),
            eliminate_duplicates=_KeyDuplicates(space, self.known),
        )
        self._algorithm.setup(self._problem, seed=seed, termination=NoTermination())
        self._generation: list[str] = []  # specs of the generation being evaluated
        self._handed_out = 0
        self._results: dict[str, tuple[list[float], float]] = {}
        self._steady: list[str] = []  # steady-state offspring handed out, awaiting results
        self._extra: dict[str, tuple[list[float], float]] = {}  # their results, for survival

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        if self._handed_out >= len(self._generation):
            if self._generation:  # the previous generation is still being evaluated
                return self._ask_steady(n) if self.steady_state else []
            self._start_generation()
        chunk = self._generation[self._handed_out : self._handed_out + n]
        self._handed_out += len(chunk)
        return [
            Candidate(self.space.parse(spec), info={"generation": self._gen_number()})
            for spec in chunk
        ]

    def tell(self, trials: Sequence[Trial]) -> None:
        for trial in trials:
            spec = trial.genotype.spec
            if spec in self._generation or spec in self._steady:
                row = np.where(
                    np.isfinite(self.objective_row(trial)), self.objective_row(trial), _FAILED
                )
                result = (row.tolist(), min(self.violation(trial), _FAILED))
                if spec in self._generation:
                    self._results[spec] = result
                else:
                    self._steady.remove(spec)
                    self._extra[spec] = result
        if self._generation and all(s in self._results for s in self._generation):
            self._finish_generation()

    def _ask_steady(self, n: int) -> list[Candidate]:
        """Offspring of everything evaluated so far, without waiting for the generation."""
        algorithm = self._algorithm
        pool = self._pool()
        if len(pool) < 2:  # nothing to breed from yet: the initial population grows instead
            avoid = set(self.known)
            specs = []
            for _ in range(n):
                genotype = self.draw_new(
                    lambda: self.space.sample(algorithm.random_state), avoid=avoid
                )
                if genotype is None:
                    break
                avoid.add(genotype.key())
                specs.append(genotype.spec)
        else:
            offspring = algorithm.mating.do(
                self._problem, pool, n, algorithm=algorithm, random_state=algorithm.random_state
            )
            specs = [str(x[0]) for x in offspring.get("X")]
        self._steady.extend(specs)
        info = {"generation": self._gen_number(), "steady": True}
        return [Candidate(self.space.parse(spec), info=info) for spec in specs]

    def _pool(self) -> Population:
        """Survivors plus every finished member of the generation, ranked for tournaments."""
        known = {s: self._results[s] for s in self._generation if s in self._results}
        known.update(self._extra)
        if self._algorithm.is_initialized:
            known.update({str(i.X[0]): (i.F.tolist(), float(i.G[0])) for i in self._algorithm.pop})
        if not known:
            return Population.empty()
        pool = self._population(known)
        return self._algorithm.survival.do(
            self._problem,
            pool,
            n_survive=len(pool),
            algorithm=self._algorithm,
            random_state=self._algorithm.random_state,
        )

    def _population(self, results: Mapping[str, tuple[Sequence[float], float]]) -> Population:
        """Individuals from spec -> (objectives F, constraint violation G)."""
        pop = Population.new("X", np.array([[s] for s in results], dtype=object))
        F = np.array([f for f, _ in results.values()], dtype=float)
        G = np.array([[g] for _, g in results.values()], dtype=float)
        Evaluator().eval(StaticProblem(self._problem, F=F, G=G), pop)
        return pop

    def _start_generation(self) -> None:
        infills = self._algorithm.ask()
        # pymoo returns None when mating finds no new offspring: the runner stops (exhausted).
        self._generation = [] if infills is None else [str(x[0]) for x in infills.get("X")]
        self._handed_out = 0
        self._results = {}
        if not self._generation:
            return

    def _finish_generation(self) -> None:
        # Steady-state offspring told so far compete in this survival like the generation's.
        results = {**{s: self._results[s] for s in self._generation}, **self._extra}
        self._algorithm.tell(infills=self._population(results))
        self._generation, self._handed_out, self._results, self._extra = [], 0, {}, {}

    def _gen_number(self) -> int:
        return int(self._algorithm.n_iter or 1) if self._algorithm.is_initialized else 0

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        algorithm = self._algorithm
        pop = algorithm.pop if algorithm.is_initialized else Population.empty()
        return {
            "random_state": algorithm.random_state.bit_generator.state,
            "initialized": bool(algorithm.is_initialized),
            "n_iter": int(algorithm.n_iter or 0) if algorithm.is_initialized else 0,
            "population": [
                {
                    "spec": str(ind.X[0]),
                    "F": ind.F.tolist(),
                    "G": ind.G.tolist(),
                    "rank": _int_or_none(ind.get("rank")),
                    "crowding": _float_or_none(ind.get("crowding")),
                }
                for ind in pop
            ],
            "generation": list(self._generation),
            "handed_out": self._handed_out,
            "results": {k: [f, g] for k, (f, g) in self._results.items()},
            "steady": list(self._steady),
            "extra": {k: [f, g] for k, (f, g) in self._extra.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        algorithm = self._algorithm
        if state["initialized"]:
            algorithm._initialize()  # sets up the empty population and timers pymoo expects
            members = state["population"]
            pop = self._population({m["spec"]: (m["F"], m["G"][0]) for m in members})
            for ind, m in zip(pop, members):
                ind.set("rank", m["rank"])
                ind.set("crowding", m["crowding"])
            algorithm.pop = pop
            algorithm.n_iter = state["n_iter"]
            algorithm.is_initialized = True
        algorithm.random_state.bit_generator.state = state["random_state"]
        self._generation = list(state["generation"])
        self._handed_out = int(state["handed_out"])
        self._results = {k: (list(v[0]), float(v[1])) for k, v in state["results"].items()}
        self._steady = list(state.get("steady", []))
        self._extra = {k: (list(v[0]), float(v[1])) for k, v in state.get("extra", {}).items()}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


class _SpaceSampling(Sampling):
    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def _do(
        self, problem: Problem, n_samples: int, random_state: Any = None, **kwargs: Any
    ) -> np.ndarray:
        return np.array(
            [[self.space.sample(random_state).spec] for _ in range(n_samples)], dtype=object
        )


class _SpaceCrossover(Crossover):
    def __init__(self, space: SearchSpace, prob: float) -> None:
        super().__init__(n_parents=2, n_offsprings=1, prob=prob)
        self.space = space

    def _do(
        self, problem: Problem, X: np.ndarray, random_state: Any = None, **kwargs: Any
    ) -> np.ndarray:
        _, n_matings, _ = X.shape
        Y = np.empty((1, n_matings, 1), dtype=object)
        for k in range(n_matings):
            a, b = (self.space.parse(str(X[i, k, 0])) for i in range(2))
            Y[0, k, 0] = self.space.crossover(a, b, random_state).spec
        return Y


class _SpaceMutation(Mutation):
    def __init__(self, space: SearchSpace, prob: float) -> None:
        super().__init__(prob=prob)
        self.space = space

    def _do(
        self, problem: Problem, X: np.ndarray, random_state: Any = None, **kwargs: Any
    ) -> np.ndarray:
        Y = X.copy()
        for i in range(len(X)):
            Y[i, 0] = self.space.mutate(self.space.parse(str(X[i, 0])), random_state).spec
        return Y


class _KeyDuplicates(DuplicateElimination):
    """Duplicates by genotype key: within a population, against another, and against history."""

    def __init__(self, space: SearchSpace, known: set[str]) -> None:
        super().__init__()
        self.space = space
        self.known = known

    def _do(
        self, pop: Population, other: Population | None, is_duplicate: np.ndarray
    ) -> np.ndarray:
        keys = [f"{self.space.name}:{x[0]}" for x in pop.get("X")]
        if other is None:
            seen: set[str] = set()
            for i, key in enumerate(keys):
                if key in seen or key in self.known:
                    is_duplicate[i] = True
                seen.add(key)
        else:
            other_keys = {f"{self.space.name}:{x[0]}" for x in other.get("X")}
            for i, key in enumerate(keys):
                if key in other_keys:
                    is_duplicate[i] = True
        return is_duplicate
