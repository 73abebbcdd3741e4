"""Shared pieces of the supernet tests: tiny space settings, a latency table, a training task,
an nb201 cell supernet trainer."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hwnas.devices import DeviceProfile
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.lut import LatencyTable
from hwnas.search.supernet.cells import CellClassificationTask, cell_counted_terms
from hwnas.search.supernet.costs import CostSet
from hwnas.search.supernet.losses import PenaltyLoss
from hwnas.search.supernet.tasks import ClassificationTask
from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer
from hwnas.spaces import make_space
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.spaces.nb201 import NB201Space
from hwnas.training.settings import TrainSettings

#: Two searchable layers of 8 candidates each: 64 architectures, a supernet of 16 blocks.
TINY = {"stages": [[8, 1, 1], [16, 2, 1]], "head_channels": 32}
#: Three layers, the middle one with skip: 8 * 9 * 8 architectures.
SMALL = {"stages": [[8, 1, 1], [16, 2, 2]], "head_channels": 32}
DIGITS = (1, 16, 16)
#: The nb201 cell space at its smallest: 4 channels, one cell per stage.
CELL = {"channels": 4, "cells_per_stage": 1}


def build_table(space: MobileNetSpace, profile: DeviceProfile) -> LatencyTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        return LatencyTable.build(space, profile, num_classes=10, input_shape=DIGITS)


def classification_task(space: MobileNetSpace, data, **settings) -> ClassificationTask:
    options = {"batch_size": 32, "data_fraction": 0.3, "lr": 0.05, **settings}
    return ClassificationTask(space=space, data=data, settings=TrainSettings(**options))


def cell_trainer(
    data: Any,
    *,
    data_fraction: float = 0.3,
    lambdas: Sequence[float] = (0.0,),
    checkpoint_dir: Path | None = None,
    log: Callable[..., None] | None = None,
    **settings: Any,
) -> tuple[NB201Space, SupernetTrainer]:
    """A DARTS trainer of the ``CELL`` supernet on ``data`` (params as the cost, one
    ``PenaltyLoss`` head per lambda); ``settings`` override the SupernetSettings."""
    space = make_space("nb201", CELL)
    task = CellClassificationTask(
        space=space, data=data,
        settings=TrainSettings(batch_size=32, data_fraction=data_fraction, lr=0.05),
    )  # fmt: skip
    costs = CostSet(cell_counted_terms(space, ["params"], num_classes=10, input_shape=DIGITS))
    options = {"relaxation": "softmax", "theta_lr": 0.2, **settings}
    trainer = SupernetTrainer(
        task=task, costs=costs, heads=[PenaltyLoss(v) for v in lambdas],
        settings=SupernetSettings(**options), checkpoint_dir=checkpoint_dir, log=log,
    )  # fmt: skip
    return space, trainer  # type: ignore[return-value]
