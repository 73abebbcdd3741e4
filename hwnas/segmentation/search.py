"""A supernet search for segmentation through the library: :func:`search_segmentation`.

It wires the same pieces as :func:`hwnas.search` (run store, strategy, runner, front files)
with a :class:`SegmentationProvider` in place of the classification TrainingProvider, for data
given as an object. From a config (CLI, ``hwnas.search``), ``dataset="segmentation:NAME"``
reaches the same provider through :func:`hwnas.evaluate.build_providers`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hwnas.rundir as rundir
from hwnas.errors import ConfigError
from hwnas.segmentation import DATASET_PREFIX

__all__ = ["search_segmentation"]


def search_segmentation(
    *,
    out: str | os.PathLike[str],
    data: Any = "shapes",
    strategy: str = "squeezenas",
    objectives: Sequence[str] = ("miou:max", "macs"),
    space_options: Mapping[str, Any] | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    budget: int = 10,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    resolution: int = 32,
) -> Any:
    """Search ``mobilenet`` encoders for segmentation of ``data`` (a :class:`SegmentationData`
    or ``"shapes"``, ``"voc"``, ``"cityscapes"``); returns :class:`hwnas.api.SearchResult`.

    ``training`` takes the training settings (epochs, batch_size, lr ...) and
    ``train_device``; ``strategy`` is one of the supernet strategies.
    """
    from hwnas import __version__
    from hwnas.api import SearchResult, _check_new_run_dir
    from hwnas.config import RunConfig, dumps_toml
    from hwnas.evaluate import Evaluator, resolve_objectives
    from hwnas.objectives.base import parse_objective
    from hwnas.results import compute_front, write_front
    from hwnas.runner import Budget, run
    from hwnas.segmentation.data import SegmentationData, load_segmentation
    from hwnas.segmentation.provider import SegmentationProvider
    from hwnas.spaces import make_space
    from hwnas.store import RunStore
    from hwnas.strategies import make_strategy
    from hwnas.strategies.base import RunContext
    from hwnas.supernet.strategies import SupernetStrategy
    from hwnas.training.settings import TrainSettings

    if not isinstance(data, SegmentationData):
        data = load_segmentation(str(data), data_dir=data_dir, resolution=resolution, seed=seed)
    options = dict(training or {})
    train_device = str(options.pop("train_device", "auto"))
    settings = TrainSettings.from_options(options)
    config = RunConfig(
        space="mobilenet", strategy=strategy, objectives=list(objectives), seed=seed,
        budget=budget, space_options=dict(space_options or {}),
        strategy_options=dict(strategy_options or {}), dataset=DATASET_PREFIX + data.name,
        training={**options, "train_device": train_device}, hwnas_version=__version__,
    )  # fmt: skip
    space = make_space("mobilenet", config.space_options)
    provider = SegmentationProvider(
        space=space,
        data=data,
        settings=settings,
        train_device=train_device,
        seed=seed,  # type: ignore[arg-type]
    )
    parsed = [parse_objective(o) for o in objectives]
    resolved, constraints = resolve_objectives(parsed, [], provider.units())
    chosen = make_strategy(strategy, space=space, objectives=resolved, seed=seed,
                           options=config.strategy_options)  # fmt: skip
    if not isinstance(chosen, SupernetStrategy):
        raise ConfigError(
            f"segmentation searches use a supernet strategy (squeezenas, fbnet, darts, snas), "
            f"not '{strategy}'"
        )
    evaluator = Evaluator([provider], [o.metric for o in resolved])
    out_dir = Path(out)
    _check_new_run_dir(out_dir)
    with RunStore.create(out_dir, config.to_dict()) as store:
        rundir.write_file(out_dir, rundir.CONFIG, dumps_toml(config.to_dict()))
        chosen.bind_run(RunContext(store.run_dir, config, (provider,)))
        outcome = run(
            store=store,
            strategy=chosen,
            evaluator=evaluator,
            objectives=resolved,
            constraints=constraints,
            budget=Budget(evaluations=budget),
            seed=seed,
        )
        trials = store.trials()
    front = compute_front(trials, resolved, constraints, evaluator.units())
    write_front(out_dir, front)
    return SearchResult(out_dir, config, trials, front, outcome)
