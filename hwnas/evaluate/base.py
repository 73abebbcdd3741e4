"""The provider protocol: what every source of measurements implements.

Providers (tables, training, device profilers, segmentation) import this module only, never the
evaluator or one another, so evaluation has no import cycle.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import hwnas.rundir as rundir
from hwnas.types import Candidate, Measurement


@dataclass(frozen=True)
class EvalContext:
    """Where an evaluation may write (its run directory) and which trial it is."""

    run_dir: Path
    trial: int
    seed: int = 0

    def weights_path(self, trial: int | None = None) -> Path:
        number = self.trial if trial is None else trial
        return self.run_dir / rundir.weights_file(number)


class MetricProvider(abc.ABC):
    """Produces some metrics for a candidate."""

    #: True when the metrics need no training (LEMONADE's cheap objectives).
    cheap: bool = True
    #: What the provider stands for: "training" (trains candidates; a supernet trains on its
    #: data), "device" (the target device and its latency table), "table" or "profile".
    role: str = "profile"
    #: The hardware this provider occupies while it works ("cpu", "cuda:0" ...), or None.
    #: Executors use it so that latency is never measured on a device that is training.
    resource: str | None = None
    #: True when the metrics are timed on ``resource`` (measured latency, energy): parallel
    #: executors then measure them with that device to themselves (see hwnas/executors/gate.py).
    exclusive: bool = False

    @abc.abstractmethod
    def units(self) -> Mapping[str, str]:
        """The metrics this provider offers, with their units."""

    def cheap_metrics(self) -> frozenset[str]:
        """The metrics of :meth:`units` that need no training (all of them when ``cheap``).
        A provider may offer both kinds: a benchmark table's latency column is a lookup
        table of a device, its accuracy column stands in for training."""
        return frozenset(self.units()) if self.cheap else frozenset()

    @abc.abstractmethod
    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        """Measurements of ``metrics`` (a subset of :meth:`units`) for ``candidate``."""
