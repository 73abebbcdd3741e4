"""Shared pieces of the supernet tests: tiny space settings, a latency table, a training task."""

from __future__ import annotations

import warnings

from hwnas.devices import DeviceProfile
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.lut import LatencyTable
from hwnas.search.supernet.tasks import ClassificationTask
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.training.settings import TrainSettings

#: Two searchable layers of 8 candidates each: 64 architectures, a supernet of 16 blocks.
TINY = {"stages": [[8, 1, 1], [16, 2, 1]], "head_channels": 32}
#: Three layers, the middle one with skip: 8 * 9 * 8 architectures.
SMALL = {"stages": [[8, 1, 1], [16, 2, 2]], "head_channels": 32}
DIGITS = (1, 16, 16)


def build_table(space: MobileNetSpace, profile: DeviceProfile) -> LatencyTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        return LatencyTable.build(space, profile, num_classes=10, input_shape=DIGITS)


def classification_task(space: MobileNetSpace, data, **settings) -> ClassificationTask:
    options = {"batch_size": 32, "data_fraction": 0.3, "lr": 0.05, **settings}
    return ClassificationTask(space=space, data=data, settings=TrainSettings(**options))
