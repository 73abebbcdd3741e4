"""The strategy protocol: ask for candidates, tell results, save and load state."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hwnas.objectives.base import Constraint, Objective
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Trial, TrialState

if TYPE_CHECKING:
    from pathlib import Path

    from hwnas.evaluate.base import MetricProvider
    from hwnas.evaluate.cheap import CheapEvaluator


@dataclass(frozen=True)
class StrategyResources:
    """The few things of its run a strategy may use besides trials, bound once before it asks.

    ``checkpoint_dir`` is where a strategy that trains itself (a supernet) keeps its state;
    ``trains`` says whether candidates are trained (so weights can be inherited); ``cheap`` gives
    training-free metrics of unevaluated genotypes, ``exact`` names the objectives the run
    takes from such a source and ``measured`` the metrics it can only measure (or train for).
    ``training`` is the provider that trains candidates (a supernet takes its data, device and
    settings from it) and ``device`` the target-device provider (its latency table). Strategies
    never see the store, the run directory or the config.
    """

    checkpoint_dir: Path | None = None
    trains: bool = False
    cheap: CheapEvaluator | None = None
    exact: frozenset[str] = frozenset()
    measured: frozenset[str] = frozenset()
    training: MetricProvider | None = None
    device: MetricProvider | None = None


class Strategy(abc.ABC):
    """Proposes candidates (``ask``) and learns from evaluated trials (``tell``).

    Strategies see trials and objective values only, never the store. The runner keeps
    :attr:`known` (the :meth:`Candidate.key` of everything already asked in this run: the
    genotype key, plus ``@fidelity`` when a fidelity is set) up to date, so a strategy can avoid
    proposing duplicates; it is rebuilt from the store on resume, updated in place (strategies
    may hold a reference to it) and is not part of :meth:`state_dict`.
    """

    name: ClassVar[str]
    #: Candidates the runner asks for at once when the executor has room.
    batch_size: ClassVar[int] = 1
    #: How many objectives the strategy optimises (None: any number).
    max_objectives: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        seed: int = 0,
    ) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.constraints = list(constraints)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.known: set[str] = set()
        self.cheap: CheapEvaluator | None = None
        self.resources = StrategyResources()
        self._events: list[tuple[str, dict[str, Any]]] = []

    def bind(self, resources: StrategyResources) -> None:
        """Give the strategy what it may use of its run (see :class:`StrategyResources`)."""
        self.resources = resources
        self.cheap = resources.cheap

    def log_event(self, kind: str, **data: Any) -> None:
        """Queue an event (e.g. predictor quality per round) for the run store's events table."""
        self._events.append((kind, data))

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        """The events logged since the last call; the runner stores them after each tell."""
        events, self._events = self._events, []
        return events

    def check_space(self) -> None:
        """Raise ConfigError if this strategy cannot search ``self.space``."""

    @abc.abstractmethod
    def ask(self, n: int) -> list[Candidate]:
        """Up to ``n`` new candidates; fewer (or none) when it must wait for results."""

    @abc.abstractmethod
    def tell(self, trials: Sequence[Trial]) -> None:
        """Results of earlier candidates (COMPLETE or FAILED), in any grouping and order."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state; together with the constructor arguments it restores the strategy."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    # -- helpers for subclasses ------------------------------------------------------------
    def objective_row(self, trial: Trial) -> np.ndarray:
        """Sign-adjusted objectives (all minimised); +inf for failed or missing values."""
        if trial.state is not TrialState.COMPLETE:
            return np.full(len(self.objectives), np.inf)
        row = np.array([o.sign * trial.value(o.metric) for o in self.objectives], dtype=float)
        row[np.isnan(row)] = np.inf
        return row

    def violation(self, trial: Trial) -> float:
        """Total constraint violation (0 when feasible, inf when failed)."""
        if trial.state is not TrialState.COMPLETE:
            return math.inf
        return float(sum(c.violation(trial.value(c.metric)) for c in self.constraints))

    def draw_new(
        self, make: Callable[[], Genotype], tries: int = 200, avoid: set[str] | None = None
    ) -> Genotype | None:
        """Call ``make`` until it yields a genotype not yet known; None after ``tries``."""
        avoid = self.known if avoid is None else avoid
        for _ in range(tries):
            genotype = make()
            if genotype.key() not in avoid:
                return genotype
        return None
