"""The Python API: :func:`search`, :func:`resume` and :func:`open_run`. The CLI calls these."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hwnas.rundir as rundir
from hwnas._version import __version__
from hwnas.checks import check_settings
from hwnas.config import RunConfig, dumps_toml
from hwnas.errors import ConfigError, HwnasError, RunError
from hwnas.evaluate.base import MetricProvider
from hwnas.evaluate.cheap import cheap_evaluator
from hwnas.evaluate.evaluator import Evaluator, available_units
from hwnas.evaluate.providers import build_providers
from hwnas.objectives.base import Constraint, Objective, parse_constraint, parse_objective
from hwnas.objectives.ranking import RANKING_EVENT
from hwnas.objectives.resolve import resolve_objectives
from hwnas.registry import Registry
from hwnas.resolved import resolve_training_threads, resolved_config
from hwnas.results import (
    SearchResult,
    compute_front,
    oneshot_ranking,
    stored_config,
    write_front,
)
from hwnas.runner import Budget, Executor, run
from hwnas.search import default_strategy, make_strategy, max_objectives
from hwnas.search.base import Strategy, StrategyResources
from hwnas.spaces import make_space
from hwnas.spaces.base import SearchSpace
from hwnas.store import RunStore
from hwnas.surrogates.table import resolve_benchmark
from hwnas.types import TrialState


@dataclass
class Session:
    """Everything a run needs, validated, before anything is written to disk."""

    config: RunConfig
    space: SearchSpace
    objectives: list[Objective]
    constraints: list[Constraint]
    evaluator: Evaluator
    strategy: Strategy
    providers: tuple[MetricProvider, ...] = ()

    @classmethod
    def prepare(
        cls, config: RunConfig, *, providers: Sequence[MetricProvider] | None = None
    ) -> Session:
        """Validate ``config`` and build everything; ``providers`` replace the ones the config
        names (a library caller's data object, as segmentation's)."""
        space = make_space(config.space, config.space_options)
        objectives = [parse_objective(o) for o in config.objectives]
        if not objectives:
            raise ConfigError(
                "give at least one objective, e.g. --objective error --objective latency"
            )
        constraints = [parse_constraint(c) for c in config.constraints]
        check_settings(config, objectives, max_objectives(config.strategy))
        providers = list(providers) if providers is not None else build_providers(config, space)
        objectives, constraints = resolve_objectives(
            objectives, constraints, available_units(providers)
        )
        metrics = [o.metric for o in objectives] + [c.metric for c in constraints]
        evaluator = Evaluator(providers, metrics)
        strategy = make_strategy(
            config.strategy,
            space=space,
            objectives=objectives,
            constraints=constraints,
            seed=config.seed,
            options=config.strategy_options,
        )
        strategy = _with_fidelity(strategy, config)
        _check_executor(config)
        if config.post.get("export"):
            from hwnas.selection import parse_selection

            parse_selection(str(config.post["export"]))
        return cls(config, space, objectives, constraints, evaluator, strategy, tuple(providers))

    def resources(self, run_dir: Path) -> StrategyResources:
        """What the strategy may use of this run (never the store, the directory or config)."""
        by_role = {}
        for provider in self.providers:
            by_role.setdefault(provider.role, provider)
        exact, measured = set(), set()
        for metric in available_units(self.providers):
            source = next(p for p in self.providers if metric in p.units())
            (exact if metric in source.cheap_metrics() else measured).add(metric)
        exact &= set(self.evaluator.metrics)
        return StrategyResources(
            checkpoint_dir=run_dir / rundir.STRATEGY,
            trains=bool(self.config.dataset),
            cheap=cheap_evaluator(self.providers),
            exact=frozenset(exact),
            measured=frozenset(measured),
            training=by_role.get("training"),
            device=by_role.get("device"),
        )

    def run(
        self, store: RunStore, budget: Budget, *, executor: Executor | None, progress: bool
    ) -> SearchResult:
        self.strategy.bind(self.resources(store.run_dir))
        outcome = run(
            store=store,
            strategy=self.strategy,
            evaluator=self.evaluator,
            objectives=self.objectives,
            constraints=self.constraints,
            budget=budget,
            executor=executor,
            seed=self.config.seed,
            progress=progress,
        )
        trials = store.trials()
        front = compute_front(trials, self.objectives, self.constraints, self.evaluator.units())
        write_front(store.run_dir, front)
        ranking = oneshot_ranking(store.events(RANKING_EVENT))
        result = SearchResult(store.run_dir, self.config, trials, front, outcome, ranking)
        _post_process(result, self.config)
        return result


def search(
    *,
    space: str = "mobilenet",
    strategy: str | None = None,
    objectives: Sequence[str | Objective],
    out: str | os.PathLike[str],
    constraints: Sequence[str | Constraint] = (),
    benchmark: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    budget: int | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    space_options: Mapping[str, Any] | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    profiling: Mapping[str, Any] | None = None,
    executor: Mapping[str, Any] | None = None,
    post: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> SearchResult:
    """Search ``space`` with ``strategy`` for the Pareto front of ``objectives``.

    Objectives are ``"NAME"``, ``"NAME:min"`` or ``"NAME:max"``; constraints
    ``"params<=1.5e6"`` or ``"latency<=5ms"``. Candidates are evaluated by a ``benchmark``
    table and/or by training on ``dataset`` and profiling on ``device``. The run directory
    ``out`` receives ``hwnas.db``, ``config.toml``, ``front.csv`` and ``front.json``.
    Without ``strategy``, the one measured best for the situation (table or training, see
    :func:`hwnas.search.default_strategy`); the run's config records the name.
    """
    config = RunConfig(
        space=space,
        strategy=strategy or default_strategy(benchmark=benchmark, dataset=dataset),
        objectives=[str(o) for o in objectives],
        constraints=[str(c) for c in constraints],
        seed=int(seed),
        budget=budget,
        time_budget=time_budget,
        space_options=dict(space_options or {}),
        strategy_options=dict(strategy_options or {}),
        benchmark=resolve_benchmark(benchmark) if benchmark is not None else None,
        dataset=dataset,
        data_dir=str(Path(data_dir).resolve()) if data_dir is not None else None,
        device=device,
        training=dict(training or {}),
        profiling=dict(profiling or {}),
        executor=dict(executor or {}),
        post=dict(post or {}),
        hwnas_version=__version__,
    )
    if config.benchmark is None and config.dataset is None:
        raise ConfigError("give --benchmark TABLE or --dataset NAME to evaluate candidates")
    _check_new_run_dir(Path(out))  # before anything is built
    config = resolve_training_threads(config)
    return start(Session.prepare(config), out, progress=progress)


def start(session: Session, out: str | os.PathLike[str], *, progress: bool = False) -> SearchResult:
    """Create the run directory ``out`` and run a prepared session in it."""
    config = session.config
    run_budget = Budget(evaluations=config.budget, seconds=config.time_budget)
    out_dir = Path(out)
    _check_new_run_dir(out_dir)
    created = not out_dir.exists()
    store = RunStore.create(out_dir, config.to_dict())
    try:
        _write_config(out_dir, session)
        return session.run(
            store, run_budget, executor=_make_executor(config, session), progress=progress
        )
    except HwnasError:
        # Bad input found only once running (before any trial finished): leave nothing behind.
        if store.count((TrialState.COMPLETE, TrialState.FAILED)) == 0 and created:
            store.close()
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        store.close()


def resume(
    run_dir: str | os.PathLike[str],
    *,
    budget: int | None = None,
    time_budget: float | None = None,
    executor: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> SearchResult:
    """Continue a run (killed or finished) up to ``budget`` evaluations in total.

    ``executor`` settings (``kind``, ``workers``, ``ray_address`` ...) replace the run's from
    now on; another kind starts from that kind's defaults. Trials that were in flight when the
    run stopped are evaluated again; completed ones are never repeated.
    """
    with RunStore.open(run_dir) as store:
        config = stored_config(store)
        if budget is None and time_budget is None:
            budget, time_budget = config.budget, config.time_budget
        run_budget = Budget(evaluations=budget, seconds=time_budget)
        # Every row is read (and a damaged one refused) before anything is written.
        done = sum(t.state.finished for t in store.trials())
        if budget is not None and budget < done:
            raise ConfigError(
                f"run '{store.run_dir}' already has {done} finished trials, more than --budget "
                f"{budget}; give a total budget of at least {done} (the run was left unchanged)"
            )
        settings = dict(config.executor)
        if executor:
            kind = settings.get("kind", "local")
            same_kind = executor.get("kind", kind) == kind
            settings = {**settings, **executor} if same_kind else dict(executor)
        updated = config.replace(budget=budget, time_budget=time_budget, executor=settings)
        session = Session.prepare(updated)
        _check_strategy_state(store, session)
        if updated != config:
            config = updated
            store.set_meta("config", _json(config.to_dict()))
            _write_config(store.run_dir, session)
        return session.run(
            store, run_budget, executor=_make_executor(config, session), progress=progress
        )


def _check_strategy_state(store: RunStore, session: Session) -> None:
    """RunError when the stored strategy state does not load (checked on a fresh strategy, so
    that a refused resume writes nothing)."""
    state = store.strategy_state()
    if state is None:
        return
    config = session.config
    probe = make_strategy(
        config.strategy,
        space=session.space,
        objectives=session.objectives,
        constraints=session.constraints,
        seed=config.seed,
        options=config.strategy_options,
    )
    try:
        _with_fidelity(probe, config).load_state_dict(state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise RunError(
            f"the strategy state in '{store.run_dir / rundir.DB}' does not fit strategy "
            f"'{config.strategy}' ({type(exc).__name__}: {exc}); the run database is damaged "
            "or was written by another strategy"
        ) from None


def _unchanged(strategy: Strategy, config: RunConfig) -> Strategy:
    return strategy


#: Multi-fidelity wrappers by ``--fidelity`` name: (strategy, config) -> strategy.
FIDELITIES: Registry[Callable[[Strategy, RunConfig], Strategy]] = Registry("fidelity")
FIDELITIES.add("none", f"{__name__}:_unchanged", "every candidate at full fidelity (default)")
FIDELITIES.add(
    "sh",
    "hwnas.search.successive_halving:with_successive_halving",
    "successive halving over training epochs (needs --dataset)",
)


def _with_fidelity(strategy: Strategy, config: RunConfig) -> Strategy:
    """``--fidelity sh`` wraps the strategy in successive halving over training epochs."""
    fidelity = str(config.training.get("fidelity", "none"))
    if fidelity not in FIDELITIES:
        raise ConfigError(FIDELITIES.unknown_message(fidelity))
    if fidelity != "none" and not config.dataset:
        raise ConfigError(
            f"--fidelity {fidelity} needs training (--dataset); a table has one fidelity"
        )
    return FIDELITIES.get(fidelity)(strategy, config)


def _check_executor(config: RunConfig) -> None:
    """The executor settings' names, types and bounds (one-line ConfigError), before any file."""
    from hwnas.executors.settings import EXECUTORS, ExecutorSettings

    kind = config.executor.get("kind", "local")
    if kind not in EXECUTORS:
        raise ConfigError(EXECUTORS.unknown_message(kind))
    ExecutorSettings.from_mapping(config.executor)


def _make_executor(config: RunConfig, session: Session) -> Executor | None:
    """None means the runner's in-process LocalExecutor."""
    kind = config.executor.get("kind", "local")
    if kind == "local":
        return None
    from hwnas.executors.settings import make_executor

    return make_executor(config, session.space, session.evaluator)


def _post_process(result: SearchResult, config: RunConfig) -> None:
    """Exports and plots asked for with the search (``--export``, ``--plot``)."""
    if config.post.get("export"):
        from hwnas.export.exporter import export_run

        export_run(result.run_dir, select=str(config.post["export"]))
    if config.post.get("plot"):
        from hwnas.plot.render import plot_runs

        plot_runs([result.run_dir])


def _check_new_run_dir(out_dir: Path) -> None:
    if os.path.lexists(out_dir / rundir.DB):
        raise RunError(
            f"'{out_dir}' already holds a run; continue it with `hwnas resume {out_dir}` "
            "or choose another --out"
        )
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunError(f"'{out_dir}' exists and is not an empty directory; choose another --out")


def _write_config(run_dir: Path, session: Session) -> None:
    """``config.toml``: the run's settings with the training and profiling values used."""
    text = dumps_toml(resolved_config(session.config, session.providers))
    rundir.write_file(run_dir, rundir.CONFIG, text)


def _json(data: Any) -> str:
    import json

    return json.dumps(data)
