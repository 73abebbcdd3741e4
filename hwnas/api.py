"""The Python API: :func:`search`, :func:`resume` and :func:`open_run`. The CLI calls these."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas import __version__
from hwnas.config import RunConfig, dumps_toml
from hwnas.errors import ConfigError, RunError
from hwnas.evaluate import (
    Evaluator,
    MetricProvider,
    available_units,
    build_providers,
    cheap_evaluator,
    resolve_objectives,
)
from hwnas.objectives.base import Constraint, Objective, parse_constraint, parse_objective
from hwnas.results import Front, compute_front, write_front
from hwnas.runner import Budget, Executor, RunOutcome, run
from hwnas.spaces import make_space
from hwnas.spaces.base import SearchSpace
from hwnas.store import RunStore
from hwnas.strategies import default_strategy, make_strategy
from hwnas.strategies.base import RunContext, Strategy
from hwnas.surrogates.table import resolve_benchmark
from hwnas.types import Trial


@dataclass
class SearchResult:
    """A run's trials and Pareto front (``front.hypervolume`` is normalised, see Front)."""

    run_dir: Path
    config: RunConfig
    trials: list[Trial]
    front: Front
    outcome: RunOutcome | None = None

    @property
    def hypervolume(self) -> float:
        return self.front.hypervolume

    @property
    def objectives(self) -> list[Objective]:
        return self.front.objectives


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
    def prepare(cls, config: RunConfig) -> Session:
        space = make_space(config.space, config.space_options)
        objectives = [parse_objective(o) for o in config.objectives]
        if not objectives:
            raise ConfigError(
                "give at least one objective, e.g. --objective error --objective latency"
            )
        constraints = [parse_constraint(c) for c in config.constraints]
        providers = build_providers(config, space)
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
        strategy.bind_cheap(cheap_evaluator(providers))
        strategy = _with_fidelity(strategy, config)
        _check_executor(config)
        if config.post.get("export"):
            from hwnas.selection import parse_selection

            parse_selection(str(config.post["export"]))
        return cls(config, space, objectives, constraints, evaluator, strategy, tuple(providers))

    def run(
        self, store: RunStore, budget: Budget, *, executor: Executor | None, progress: bool
    ) -> SearchResult:
        self.strategy.bind_run(RunContext(store.run_dir, self.config, self.providers))
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
        result = SearchResult(store.run_dir, self.config, trials, front, outcome)
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
    :func:`hwnas.strategies.default_strategy`); the run's config records the name.
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
    run_budget = Budget(evaluations=budget, seconds=time_budget)
    out_dir = Path(out)
    _check_new_run_dir(out_dir)
    session = Session.prepare(config)
    store = RunStore.create(out_dir, config.to_dict())
    try:
        (out_dir / "config.toml").write_text(dumps_toml(config.to_dict()))
        return session.run(
            store, run_budget, executor=_make_executor(config, session), progress=progress
        )
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
        config = RunConfig.from_dict(store.config())
        if budget is None and time_budget is None:
            budget, time_budget = config.budget, config.time_budget
        run_budget = Budget(evaluations=budget, seconds=time_budget)
        settings = dict(config.executor)
        if executor:
            kind = settings.get("kind", "local")
            same_kind = executor.get("kind", kind) == kind
            settings = {**settings, **executor} if same_kind else dict(executor)
        updated = config.replace(budget=budget, time_budget=time_budget, executor=settings)
        session = Session.prepare(updated)
        if updated != config:
            config = updated
            store.set_meta("config", _json(config.to_dict()))
            (store.run_dir / "config.toml").write_text(dumps_toml(config.to_dict()))
        return session.run(
            store, run_budget, executor=_make_executor(config, session), progress=progress
        )


def open_run(run_dir: str | os.PathLike[str], *, write: bool = False) -> SearchResult:
    """Read a run's trials and front (no evaluation); ``write`` rewrites the front files."""
    with RunStore.open(run_dir, read_only=not write) as store:
        config = RunConfig.from_dict(store.config())
        trials = store.trials()
    objectives, constraints, units = run_objectives(config)
    front = compute_front(trials, objectives, constraints, units)
    if write:
        write_front(Path(run_dir), front)
    return SearchResult(Path(run_dir), config, trials, front)


def run_objectives(config: RunConfig) -> tuple[list[Objective], list[Constraint], dict[str, str]]:
    """The run's resolved objectives, constraints and metric units, without loading evaluators."""
    from hwnas.objectives.base import infer_unit

    objectives = [parse_objective(o) for o in config.objectives]
    constraints = [parse_constraint(c) for c in config.constraints]
    units = {
        m: infer_unit(m) for m in [o.metric for o in objectives] + [c.metric for c in constraints]
    }
    try:
        space = make_space(config.space, config.space_options)
        providers = build_providers(config, space)
        units = available_units(providers)
    except Exception:  # noqa: BLE001 - the table or dataset may be gone; units are a nicety
        pass
    try:
        return (*resolve_objectives(objectives, constraints, units), units)
    except ConfigError:
        return objectives, constraints, units


FIDELITIES = ("none", "sh")


def _with_fidelity(strategy: Strategy, config: RunConfig) -> Strategy:
    """``--fidelity sh`` wraps the strategy in successive halving over training epochs."""
    fidelity = str(config.training.get("fidelity", "none"))
    if fidelity not in FIDELITIES:
        raise ConfigError(f"unknown fidelity '{fidelity}'; choose one of: {', '.join(FIDELITIES)}")
    if fidelity == "none":
        return strategy
    if not config.dataset:
        raise ConfigError("--fidelity sh needs training (--dataset); a table has one fidelity")
    from hwnas.strategies.successive_halving import SuccessiveHalving

    return SuccessiveHalving.wrap(strategy, config)


EXECUTORS = ("local", "process", "ray")


def _check_executor(config: RunConfig) -> None:
    kind = config.executor.get("kind", "local")
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor '{kind}'; choose one of: {', '.join(EXECUTORS)}")
    workers = config.executor.get("workers")
    if workers is not None and int(workers) < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")


def _make_executor(config: RunConfig, session: Session) -> Executor | None:
    """None means the runner's in-process LocalExecutor."""
    kind = config.executor.get("kind", "local")
    if kind == "local":
        return None
    from hwnas.executors import make_executor

    return make_executor(config, session.space, session.evaluator)


def _post_process(result: SearchResult, config: RunConfig) -> None:
    """Exports and plots asked for with the search (``--export``, ``--plot``)."""
    if config.post.get("export"):
        from hwnas.export import export_run

        export_run(result.run_dir, select=str(config.post["export"]))
    if config.post.get("plot"):
        from hwnas.plot import plot_runs

        plot_runs([result.run_dir])


def _check_new_run_dir(out_dir: Path) -> None:
    if (out_dir / "hwnas.db").exists():
        raise RunError(
            f"'{out_dir}' already holds a run; continue it with `hwnas resume {out_dir}` "
            "or choose another --out"
        )
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunError(f"'{out_dir}' exists and is not an empty directory; choose another --out")


def _json(data: Any) -> str:
    import json

    return json.dumps(data)
