"""A supernet search for segmentation through the library: :func:`search_segmentation`.

It wires the same pieces as :func:`hwnas.search` (run store, strategy, runner, front files)
with a :class:`SegmentationProvider` in place of the classification TrainingProvider, for data
given as an object. From a config (CLI, ``hwnas.search``), ``dataset="segmentation:NAME"``
reaches the same provider through :func:`hwnas.evaluate.providers.build_providers`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    or ``"shapes"``, ``"voc"``, ``"cityscapes"``); returns :class:`hwnas.results.SearchResult`.

    ``training`` takes the training settings (epochs, batch_size, lr ...) and
    ``train_device``; ``strategy`` is one of the supernet strategies.
    """
    from hwnas._version import __version__
    from hwnas.api import Session, start
    from hwnas.config import RunConfig
    from hwnas.search.supernet.base import SupernetStrategy
    from hwnas.segmentation.data import SegmentationData, load_segmentation
    from hwnas.segmentation.provider import SegmentationProvider
    from hwnas.spaces import make_space
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
    provider = SegmentationProvider(
        space=make_space("mobilenet", config.space_options),
        data=data,
        settings=settings,
        train_device=train_device,
        seed=seed,  # type: ignore[arg-type]
    )
    # The one session every search goes through, with the data object's provider in place of
    # the ones the config would build (fidelity, executors and post-processing included).
    # Its own units cover what segmentation trades: miou, macs, params, peak memory.
    session = Session.prepare(config, providers=[provider])
    if not isinstance(session.strategy, SupernetStrategy):
        raise ConfigError(
            f"segmentation searches use a supernet strategy (squeezenas, fbnet, darts, snas), "
            f"not '{strategy}'"
        )
    return start(session, Path(out))
