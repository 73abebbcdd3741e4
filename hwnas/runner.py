"""The budgeted ask -> evaluate -> tell loop, and the executors that run evaluations.

As in pymoo's ``minimize``, the runner only wires a strategy, an evaluator, a store and a
budget together. All state lives in the store, so :func:`run` is also how a killed run
resumes: untold results are told, queued and running trials are evaluated again, and the
loop continues from the strategy's saved state.
"""

from __future__ import annotations

import abc
import contextlib
import math
import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hwnas.errors import ConfigError, RunError
from hwnas.evaluate.base import EvalContext
from hwnas.evaluate.evaluator import Evaluator
from hwnas.objectives.base import Constraint, Objective
from hwnas.objectives.pareto import is_feasible, nondominated_mask, normalised_hypervolume
from hwnas.progress import SearchProgress
from hwnas.search.base import Strategy
from hwnas.store import RunStore
from hwnas.types import Trial, TrialState


@dataclass(frozen=True)
class Budget:
    """Stop after ``evaluations`` finished trials in total and/or ``seconds`` of this session."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is not None and self.evaluations <= 0:
            raise ConfigError(
                f"budget must be a positive number of evaluations, not {self.evaluations}"
            )
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError(f"time budget must be positive, not {self.seconds} s")
        if self.evaluations is None and self.seconds is None:
            raise ConfigError(
                "give a budget: a number of evaluations (--budget) and/or a time (--time)"
            )


def evaluate_trial(
    evaluator: Evaluator, trial: Trial, ctx: EvalContext, *, only: Sequence[str] | None = None
) -> Trial:
    """Evaluate one trial (or only some metrics of it); any exception makes it FAILED with the
    reason (the search goes on)."""
    started = time.time()
    try:
        measurements = evaluator.evaluate(trial.candidate, ctx, only=only)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing candidate must not stop the search
        reason = f"{type(exc).__name__}: {exc}".strip()
        detail = traceback.format_exc(limit=-3)
        return replace(
            trial,
            state=TrialState.FAILED,
            error=f"{reason}\n{detail}",
            started=started,
            finished=time.time(),
        )
    return replace(
        trial,
        state=TrialState.COMPLETE,
        measurements=measurements,
        error=None,
        started=started,
        finished=time.time(),
    )


class Executor(abc.ABC):
    """Runs evaluations; the driver alone talks to the store."""

    #: Whether trials wait in the executor long enough that RUNNING is worth recording.
    asynchronous: bool = False

    @abc.abstractmethod
    def has_room(self) -> bool: ...

    def room(self) -> int | None:
        """How many more trials it would start now; None when it does not matter.

        Parallel executors say, so that a strategy asked while evaluations are in flight
        proposes only what can start now and decides later ones with more results known.
        """
        return None

    @abc.abstractmethod
    def submit(self, trial: Trial, ctx: EvalContext) -> None: ...

    @abc.abstractmethod
    def busy(self) -> int:
        """Number of submitted trials not yet returned."""

    @abc.abstractmethod
    def wait(self) -> list[Trial]:
        """Block until at least one submitted trial finishes; return the finished ones."""

    def close(self) -> None:
        return None


class LocalExecutor(Executor):
    """Evaluates in this process, one trial at a time."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self._queue: deque[tuple[Trial, EvalContext]] = deque()

    def has_room(self) -> bool:
        return not self._queue

    def submit(self, trial: Trial, ctx: EvalContext) -> None:
        self._queue.append((trial, ctx))

    def busy(self) -> int:
        return len(self._queue)

    def wait(self) -> list[Trial]:
        trial, ctx = self._queue.popleft()
        return [evaluate_trial(self.evaluator, trial, ctx)]


class FrontMonitor:
    """Front size and normalised hypervolume of the run so far (for the progress bar)."""

    def __init__(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        self.objectives = list(objectives)
        self.constraints = list(constraints)
        self._rows: list[list[float]] = []
        self.front_size = 0
        self.hypervolume = 0.0
        self._last = 0.0

    def add(self, trial: Trial) -> None:
        if is_feasible(trial, self.constraints):
            row = [o.sign * trial.value(o.metric) for o in self.objectives]
            if all(math.isfinite(v) for v in row):
                self._rows.append(row)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self._rows or (not force and now - self._last < 0.25):
            return
        self._last = now
        F = np.asarray(self._rows)
        mask = nondominated_mask(F)
        self.front_size = int(mask.sum())
        # The bounds of the trials so far: the final value equals the front's (same bounds),
        # an earlier one may exceed a later one when a new trial widens the bounds.
        self.hypervolume = normalised_hypervolume(F[mask], F.min(axis=0), F.max(axis=0))


#: An empty ask counts as this many duplicate-only asks towards the 50 that end a run as
#: exhausted: a strategy that proposes nothing at all is asked only a few more times.
_EMPTY_ASK = 17


@dataclass
class RunOutcome:
    evaluated: int  # trials finished in this session
    stopped_by: str  # "budget", "time", "exhausted"


def run(
    *,
    store: RunStore,
    strategy: Strategy,
    evaluator: Evaluator,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    budget: Budget,
    executor: Executor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> RunOutcome:
    """Run (or resume) the search in ``store`` until the budget is spent."""
    executor = executor or LocalExecutor(evaluator)
    all_trials = store.trials()
    strategy.known.update(t.candidate.key() for t in all_trials)
    state = store.strategy_state()
    if state is not None:
        try:
            strategy.load_state_dict(state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise RunError(
                f"the strategy state in '{store.run_dir}' does not fit strategy "
                f"'{strategy.name}' ({type(exc).__name__}: {exc}); the run database is damaged "
                "or was written by another strategy"
            ) from None
    by_key = {t.candidate.key(): t for t in all_trials if t.state.finished}
    untold = set(store.untold_finished())
    if untold:
        strategy.tell([t for t in all_trials if t.number in untold])
        store.mark_told(sorted(untold), strategy.state_dict())
    pending = deque(replace(t, state=TrialState.QUEUED) for t in all_trials if not t.state.finished)
    done = sum(t.state.finished for t in all_trials)
    if budget.evaluations is not None:
        # Trials queued before a kill count against the budget too; the rest stay queued in
        # the store for a later resume with a larger budget (no overshoot).
        pending = deque(list(pending)[: max(0, budget.evaluations - done)])
    failed = sum(t.state is TrialState.FAILED for t in all_trials)
    monitor = FrontMonitor(objectives, constraints)
    for t in all_trials:
        monitor.add(t)
    monitor.refresh(force=True)

    start = time.monotonic()
    evaluated = 0
    idle_asks = 0
    stopped_by = "budget"

    def remaining() -> int:
        if budget.evaluations is None:
            return 1 << 30
        return budget.evaluations - done - executor.busy() - len(pending)

    def time_up() -> bool:
        return budget.seconds is not None and time.monotonic() - start >= budget.seconds

    # closing: worker processes stop also on Ctrl-C or an error; the store stays consistent.
    bar = SearchProgress(
        enabled=progress,
        total=budget.evaluations,
        done=done,
        monitor=monitor,
        failed=failed,
        seconds=budget.seconds,
    )
    with bar, contextlib.closing(executor):
        while True:
            while executor.has_room() and not time_up():
                if not pending:
                    want = min(strategy.batch_size, remaining())
                    room = executor.room()
                    if room is not None:
                        want = min(want, room)
                    if want <= 0:
                        break
                    candidates = strategy.ask(want)
                    fresh = []
                    for c in candidates:
                        key = c.key()
                        if key in strategy.known:
                            if key in by_key:  # a duplicate: tell the earlier result again
                                strategy.tell([by_key[key]])
                            continue
                        strategy.known.add(key)
                        fresh.append(c)
                    if not fresh:
                        if executor.busy():
                            break  # the strategy may need those results first
                        # Only duplicates: ask again (a random proposal may be new next time);
                        # nothing at all, with nothing in flight: the strategy has no more.
                        idle_asks += 1 if candidates else _EMPTY_ASK
                        if idle_asks > 50:
                            stopped_by = "exhausted"
                            break
                        continue
                    idle_asks = 0
                    pending.extend(store.add_candidates(fresh, strategy.state_dict()))
                    _store_events(store, strategy)
                trial = pending.popleft()
                ctx = EvalContext(run_dir=store.run_dir, trial=trial.number, seed=seed)
                if executor.asynchronous:
                    store.mark_running(trial.number, time.time())
                executor.submit(trial, ctx)
            if not executor.busy():
                if time_up():
                    stopped_by = "time"
                break
            finished = executor.wait()
            strategy.tell(finished)
            store.record(finished, strategy.state_dict())
            _store_events(store, strategy)
            for t in finished:
                by_key[t.candidate.key()] = t
                monitor.add(t)
                failed += t.state is TrialState.FAILED
            done += len(finished)
            evaluated += len(finished)
            bar.update(done, failed)
        bar.finish(done, failed)
    return RunOutcome(evaluated=evaluated, stopped_by=stopped_by)


def _store_events(store: RunStore, strategy: Strategy) -> None:
    for kind, data in strategy.drain_events():
        store.log_event(kind, data)
