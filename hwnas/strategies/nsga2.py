"""NSGA-II (Deb et al., 2002) through pymoo's ask/tell interface, with the space's own operators.

Decision variables are the genotypes' canonical strings (one object-typed variable), so the
same strategy searches every space: sampling, crossover and mutation call the space, and
duplicates are detected by genotype key, against the population and against everything this
run has asked before. The state (population with its objectives, ranks and crowding, the
generation being evaluated and pymoo's random state) is plain JSON, so a run resumes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
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

from hwnas.spaces.base import SearchSpace
from hwnas.strategies.base import Strategy
from hwnas.types import Candidate, Trial

# pymoo needs finite numbers: failed trials get this value and count as infeasible.
_FAILED = 1e30


class NSGA2Search(Strategy):
    """Generational NSGA-II; ``ask`` hands out the current generation's offspring."""

    name = "nsga2"
    batch_size = 20

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Any],
        constraints: Sequence[Any] = (),
        seed: int = 0,
        population_size: int = 20,
        crossover_prob: float = 0.9,
        mutation_prob: float = 1.0,
    ) -> None:
        super().__init__(space=space, objectives=objectives, constraints=constraints, seed=seed)
        if population_size < 2:
            raise ValueError("population_size must be at least 2")
        self.population_size = population_size
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

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        if self._handed_out >= len(self._generation):
            if self._generation:  # the previous generation is still being evaluated
                return []
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
            if spec in self._generation:
                row = np.where(
                    np.isfinite(self.objective_row(trial)), self.objective_row(trial), _FAILED
                )
                violation = min(self.violation(trial), _FAILED)
                self._results[spec] = (row.tolist(), violation)
        if self._generation and all(s in self._results for s in self._generation):
            self._finish_generation()

    def _start_generation(self) -> None:
        infills = self._algorithm.ask()
        self._generation = [str(x[0]) for x in infills.get("X")]
        self._handed_out = 0
        self._results = {}
        if not self._generation:
            return

    def _finish_generation(self) -> None:
        specs = self._generation
        F = np.array([self._results[s][0] for s in specs], dtype=float)
        G = np.array([[self._results[s][1]] for s in specs], dtype=float)
        infills = Population.new("X", np.array([[s] for s in specs], dtype=object))
        Evaluator().eval(StaticProblem(self._problem, F=F, G=G), infills)
        self._algorithm.tell(infills=infills)
        self._generation, self._handed_out, self._results = [], 0, {}

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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        algorithm = self._algorithm
        if state["initialized"]:
            algorithm._initialize()  # sets up the empty population and timers pymoo expects
            members = state["population"]
            pop = Population.new("X", np.array([[m["spec"]] for m in members], dtype=object))
            F = np.array([m["F"] for m in members], dtype=float)
            G = np.array([m["G"] for m in members], dtype=float)
            Evaluator().eval(StaticProblem(self._problem, F=F, G=G), pop)
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
