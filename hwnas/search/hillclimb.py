"""Hill climbing with network morphisms (NASH: Elsken, Metzen and Hutter, 2017).

Start from one network trained from scratch; each round, make ``neighbours`` children of the
current best by ``morphisms_per_child`` random network morphisms (exact ones only, as NASH, unless
``approximate``), train each briefly from the inherited weights (``epochs_per_child``: the
trainer's cosine schedule restarts per child, NASH's SGDR), and move to the best child when it
beats the current network. Single-objective: the first objective; constraints count as failure.

Without weights (tables, spaces without morphisms) mutations stand in for morphisms, and the
climb restarts from a random network when no new neighbour is left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hwnas.errors import ConfigError
from hwnas.search.base import Strategy
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Trial, TrialState


class HillClimb(Strategy):
    """NASH hill climbing on the first objective."""

    name = "hillclimb"
    batch_size = 8
    max_objectives = 1

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Any],
        constraints: Sequence[Any] = (),
        seed: int = 0,
        neighbours: int = 8,
        morphisms_per_child: int = 2,
        epochs_per_child: float | None = None,
        initial_epochs: float | None = None,
        approximate: bool = False,
        mode: str = "auto",
        initial: str | None = None,
    ) -> None:
        super().__init__(space=space, objectives=objectives, constraints=constraints, seed=seed)
        if neighbours < 1 or morphisms_per_child < 1:
            raise ValueError("neighbours and morphisms_per_child must be at least 1")
        if mode not in ("auto", "morphisms", "mutations"):
            raise ValueError("mode must be 'auto', 'morphisms' or 'mutations'")
        for name, epochs in (
            ("epochs_per_child", epochs_per_child),
            ("initial_epochs", initial_epochs),
        ):
            if epochs is not None and not epochs > 0:
                raise ValueError(f"{name} must be a positive number of epochs")
        self.neighbours = neighbours
        self.morphisms_per_child = morphisms_per_child
        self.epochs_per_child = epochs_per_child
        self.initial_epochs = initial_epochs
        self.approximate = approximate
        self.mode = mode
        self.initial = initial
        self.batch_size = neighbours  # type: ignore[misc]
        # State (JSON): the current network, the round's queue and results.
        self._current: dict[str, Any] | None = None  # {"spec", "trial", "value"}
        self._queue: list[dict[str, Any]] = []
        self._outstanding: list[str] = []
        self._results: list[dict[str, Any]] = []  # this round's told neighbours
        self._round = 0
        self._weights: bool | None = None

    def check_space(self) -> None:
        from hwnas.morphisms import has_morphisms

        if self.mode == "morphisms" and not has_morphisms(self.space):
            raise ConfigError(
                f"space '{self.space.name}' has no network morphisms; use mode=mutations"
            )
        if self.initial is not None:
            self.space.parse(self.initial)

    @property
    def uses_morphisms(self) -> bool:
        if self._weights is None:
            from hwnas.morphisms import has_morphisms

            if self.mode == "auto":
                trains = self.resources.trains
                self._weights = trains and has_morphisms(self.space)
            else:
                self._weights = self.mode == "morphisms"
        return self._weights

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        if not self._queue:
            if self._outstanding:
                return []  # the round ends when every neighbour is evaluated
            self._queue = self._next_round()
        chunk, self._queue = self._queue[:n], self._queue[n:]
        self._outstanding += [item["spec"] for item in chunk]
        return [self._candidate(item) for item in chunk]

    def _candidate(self, item: dict[str, Any]) -> Candidate:
        info = {"round": item["round"]}
        genotype = self.space.parse(item["spec"])
        if item.get("transfer"):
            return Candidate(
                genotype,
                parent=item["parent"],
                transfer=item["transfer"],
                fidelity=self.epochs_per_child,
                info=info,
            )
        fidelity = self.initial_epochs if self.uses_morphisms else None
        return Candidate(genotype, fidelity=fidelity, info=info)

    def tell(self, trials: Sequence[Trial]) -> None:
        for trial in trials:
            spec = trial.genotype.spec
            if spec not in self._outstanding:
                continue
            self._outstanding.remove(spec)
            self._results.append({"spec": spec, "trial": trial.number, "value": self._value(trial)})

    def _value(self, trial: Trial) -> float:
        if trial.state is not TrialState.COMPLETE or self.violation(trial) > 0:
            return math.inf
        value = float(self.objective_row(trial)[0])
        return value if math.isfinite(value) else math.inf

    # -- rounds ----------------------------------------------------------------------------
    def _next_round(self) -> list[dict[str, Any]]:
        best = min(self._results, key=lambda r: r["value"], default=None)
        improves = best is not None and math.isfinite(best["value"])
        if improves and (self._current is None or best["value"] < self._current["value"]):
            self._current = dict(best)
        if self._results:
            self.log_event(
                "round",
                round=self._round,
                evaluated=len(self._results),
                best_trial=self._current["trial"] if self._current else None,
                best_value=self._current["value"] if self._current else None,
            )
        self._results = []
        self._round += 1
        if self._current is None:
            return self._start()
        children = self._neighbours(self.space.parse(self._current["spec"]))
        return children or self._start()

    def _start(self) -> list[dict[str, Any]]:
        """One network to start from (the ``initial`` genotype, else a random one)."""
        if self.initial is not None and self._current is None and self._round == 1:
            genotype: Genotype | None = self.space.parse(self.initial)
        else:
            genotype = self.draw_new(lambda: self.space.sample(self.rng))
        if genotype is None:
            return []
        self._current = None  # a restart: the new network is the one to beat
        return [{"spec": genotype.spec, "round": self._round}]

    def _neighbours(self, parent: Genotype) -> list[dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        for _ in range(self.neighbours * 10):
            if len(items) >= self.neighbours:
                break
            child, transfer = self._neighbour(parent)
            if child is None:
                break
            key = Candidate(child, fidelity=self.epochs_per_child if transfer else None).key()
            if key in self.known or child.spec in items:
                continue
            item: dict[str, Any] = {"spec": child.spec, "round": self._round}
            if transfer is not None:
                item.update(parent=self._current["trial"], transfer=transfer)  # type: ignore[index]
            items[child.spec] = item
        return list(items.values())

    def _neighbour(self, parent: Genotype) -> tuple[Genotype | None, dict[str, Any] | None]:
        if not self.uses_morphisms:
            child = parent
            for _ in range(self.morphisms_per_child):
                child = self.space.mutate(child, self.rng)
            return child, None  # may equal the parent: the caller skips known networks
        from hwnas.morphisms import morphisms_for, propose_transfer

        names = [n for n, m in morphisms_for(self.space).items() if m.exact or self.approximate]
        proposal = propose_transfer(
            self.space, parent, self.rng, names=names, steps=self.morphisms_per_child, distill=0.5
        )
        return proposal if proposal is not None else (None, None)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "current": self._current,
            "queue": self._queue,
            "outstanding": self._outstanding,
            "results": self._results,
            "round": self._round,
            "weights": self._weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._current = dict(state["current"]) if state.get("current") else None
        self._queue = [dict(i) for i in state["queue"]]
        self._outstanding = list(state["outstanding"])
        self._results = [dict(r) for r in state["results"]]
        self._round = int(state["round"])
        self._weights = state.get("weights")
