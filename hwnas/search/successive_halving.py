"""Successive halving over training epochs (``--fidelity sh``), wrapped around any strategy.

New genotypes come from the inner strategy and are trained briefly (rung 0). Promotion is
asynchronous, as in ASHA (Li et al. 2020): whenever a trial is among the best ``1/eta`` of the
finished trials of its rung, the same genotype is asked again at the next rung's fidelity,
starting from its own checkpoint (``parent`` = that trial, ``transfer`` = ``continue``), so no
rung waits for a whole bracket and any budget is spent. "Best" is multi-objective: feasible
before infeasible, then non-dominated rank, then crowding distance (NSGA-II's order), so small
but less accurate networks reach the top rung too.

Fidelities are total epochs: with ``epochs = 9`` and ``eta = 3``, rungs train for 1, 3 and
9 epochs, and a promoted trial trains 2 or 6 more. The inner strategy is told every genotype
once, with its rung-0 result, so it compares all genotypes at the same fidelity. The front
counts each genotype at its highest finished fidelity (:func:`hwnas.results.compute_front`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.objectives.pareto import pareto_ranks
from hwnas.search.base import Strategy
from hwnas.types import Candidate, Trial, TrialState

if TYPE_CHECKING:
    from hwnas.config import RunConfig
    from hwnas.search.base import StrategyResources


class SuccessiveHalving(Strategy):
    """Asynchronous successive halving around ``inner`` over increasing ``fidelities``."""

    name = "sh"
    # One candidate per ask: asking ahead would fill the budget with rung-0 trials before any
    # result could be promoted.
    batch_size = 1

    def __init__(self, *, inner: Strategy, fidelities: Sequence[float], eta: int = 3) -> None:
        super().__init__(
            space=inner.space,
            objectives=inner.objectives,
            constraints=inner.constraints,
            seed=inner.seed,
        )
        fidelities = [float(f) for f in fidelities]
        if len(fidelities) < 2 or any(b <= a for a, b in itertools.pairwise(fidelities)):
            raise ConfigError(
                f"successive halving needs 2+ increasing fidelities, not {fidelities}"
            )
        if fidelities[0] <= 0:
            raise ConfigError(f"fidelities (epochs) must be positive, not {fidelities}")
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise ConfigError(f"sh_eta must be an integer >= 2, not {eta!r}")
        self.inner = inner
        self.fidelities = fidelities
        self.eta = eta
        self.known = _FidelityKeys(inner.known)
        # Per rung: trial number -> (genotype spec, objective row or None if failed, violation).
        self._rungs: list[dict[int, tuple[str, list[float] | None, float]]] = [
            {} for _ in fidelities
        ]
        self._promoted: set[int] = set()

    @classmethod
    def wrap(cls, strategy: Strategy, config: RunConfig) -> SuccessiveHalving:
        """``strategy`` under successive halving with the rungs of ``config.training``.

        ``epochs`` is the top rung (total epochs); ``sh_eta`` (default 3) the reduction factor;
        ``sh_rungs`` (default 3) the number of rungs, or ``sh_min_epochs`` the bottom rung.
        """
        from hwnas.training.settings import TrainSettings  # no torch

        training = config.training
        top = _positive("epochs", training.get("epochs", TrainSettings().epochs))
        eta = training.get("sh_eta", 3)
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise ConfigError(f"sh_eta must be an integer >= 2, not {eta!r}")
        if "sh_min_epochs" in training:
            bottom = _positive("sh_min_epochs", training["sh_min_epochs"])
            if bottom >= top:
                raise ConfigError(
                    f"sh_min_epochs ({bottom:g}) must be below epochs ({top:g}), the top rung"
                )
            rungs = 1 + math.ceil(math.log(top / bottom, eta) - 1e-9)
        else:
            rungs = training.get("sh_rungs", 3)
            if isinstance(rungs, bool) or not isinstance(rungs, int) or rungs < 2:
                raise ConfigError(f"sh_rungs must be an integer >= 2, not {rungs!r}")
        fidelities = [_tidy(top / eta ** (rungs - 1 - k)) for k in range(rungs)]
        return cls(inner=strategy, fidelities=fidelities, eta=eta)

    # -- ask / tell ------------------------------------------------------------------------
    def bind(self, resources: StrategyResources) -> None:
        super().bind(resources)
        self.inner.bind(resources)

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        return super().drain_events() + self.inner.drain_events()

    def ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        while len(out) < n:
            promotion = self._next_promotion()
            if promotion is None:
                break
            out.append(promotion)
        if len(out) < n:
            for c in self.inner.ask(n - len(out)):
                out.append(
                    Candidate(
                        c.genotype,
                        parent=c.parent,
                        transfer=c.transfer,
                        fidelity=self.fidelities[0],
                        info={**c.info, "rung": 0},
                    )
                )
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        first_rung = []
        for trial in trials:
            rung = self._rung_of(trial)
            if rung is None:
                continue
            failed = trial.state is not TrialState.COMPLETE
            row = None if failed else self.objective_row(trial).tolist()
            violation = self.violation(trial)
            self._rungs[rung][trial.number] = (trial.genotype.spec, row, violation)
            if rung == 0:
                first_rung.append(trial)
        if first_rung:
            self.inner.tell(first_rung)

    def _rung_of(self, trial: Trial) -> int | None:
        rung = trial.candidate.info.get("rung")
        if isinstance(rung, int) and 0 <= rung < len(self.fidelities):
            return rung
        fidelity = trial.candidate.fidelity
        for k, f in enumerate(self.fidelities):
            if fidelity is not None and math.isclose(fidelity, f):
                return k
        return None

    def _next_promotion(self) -> Candidate | None:
        # Higher rungs first: finishing good networks matters more than starting new ones.
        for k in range(len(self.fidelities) - 2, -1, -1):
            records = self._rungs[k]
            quota = len(records) // self.eta
            if quota == 0:
                continue
            for number in self._ranked(records)[:quota]:
                spec, row, _ = records[number]
                if number in self._promoted or row is None:
                    continue
                self._promoted.add(number)
                return Candidate(
                    self.space.parse(spec),
                    parent=number,
                    transfer={"kind": "continue"},
                    fidelity=self.fidelities[k + 1],
                    info={"rung": k + 1, "promoted_from": number},
                )
        return None

    def _ranked(self, records: dict[int, tuple[str, list[float] | None, float]]) -> list[int]:
        """Trial numbers, best first: feasible, non-dominated rank, crowding, trial number."""
        numbers = sorted(records)
        usable = [n for n in numbers if records[n][1] is not None]
        failed = [n for n in numbers if records[n][1] is None]
        if not usable:
            return failed
        F = np.array([records[n][1] for n in usable], dtype=float)
        violation = np.array([records[n][2] for n in usable], dtype=float)
        ranks = pareto_ranks(F).astype(float)
        ranks[ranks < 0] = np.inf  # rows with missing values sort after every front
        crowding = np.zeros(len(usable))
        for r in np.unique(ranks[np.isfinite(ranks)]):
            members = np.flatnonzero(ranks == r)
            crowding[members] = _crowding(F[members])
        order = sorted(
            range(len(usable)),
            key=lambda i: (violation[i] > 0, violation[i], ranks[i], -crowding[i], usable[i]),
        )
        return [usable[i] for i in order] + failed

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "inner": self.inner.state_dict(),
            "fidelities": list(self.fidelities),
            "eta": self.eta,
            "rungs": [
                [[n, spec, _json_row(row), _json_float(v)] for n, (spec, row, v) in rung.items()]
                for rung in self._rungs
            ],
            "promoted": sorted(self._promoted),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        if [float(f) for f in state["fidelities"]] != self.fidelities:
            raise ConfigError(
                f"this run's rungs were {state['fidelities']} epochs, now {self.fidelities}; "
                "resume with the run's own training settings"
            )
        self._rungs = [
            {
                int(n): (str(spec), _row_from_json(row), _float_from_json(v))
                for n, spec, row, v in rung
            }
            for rung in state["rungs"]
        ]
        self._promoted = {int(n) for n in state["promoted"]}


class _FidelityKeys(set):
    """The runner's ``known`` keys (``genotype@fidelity``), mirrored without the fidelity into
    the inner strategy's ``known``, so that it never proposes a genotype twice."""

    def __init__(self, inner_known: set[str]) -> None:
        super().__init__()
        self.inner_known = inner_known

    def add(self, key: str) -> None:
        super().add(key)
        self.inner_known.add(_genotype_key(key))

    def update(self, *keys: Iterable[str]) -> None:
        for group in keys:
            for key in group:
                self.add(key)


def _genotype_key(key: str) -> str:
    base, sep, fidelity = key.rpartition("@")
    if not sep:
        return key
    try:
        float(fidelity)
    except ValueError:
        return key
    return base


def _crowding(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (inf at the extremes)."""
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    distance = np.zeros(n)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            gaps = (F[order[2:], j] - F[order[:-2], j]) / span
            distance[order[1:-1]] += gaps
    return distance


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of epochs, not {value!r}")
    return float(value)


def _tidy(epochs: float) -> float:
    """Four significant digits, so fidelities print (and key) cleanly: 5/9 -> 0.5556."""
    return float(f"{epochs:.4g}")


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _float_from_json(value: float | None) -> float:
    return math.inf if value is None else float(value)


def _json_row(row: list[float] | None) -> list[float | None] | None:
    return None if row is None else [_json_float(v) for v in row]


def _row_from_json(row: list[float | None] | None) -> list[float] | None:
    return None if row is None else [_float_from_json(v) for v in row]


def with_successive_halving(strategy: Strategy, config: RunConfig) -> SuccessiveHalving:
    """The ``sh`` fidelity (see :data:`hwnas.api.FIDELITIES`)."""
    return SuccessiveHalving.wrap(strategy, config)
