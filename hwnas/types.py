"""Core value types that flow through hwnas. Standard library and numpy only: no torch."""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, order=True)
class Genotype:
    """One architecture: the space's name and the space's canonical text form of it."""

    space: str
    spec: str

    def key(self) -> str:
        """Stable identity across processes and versions (used for dedup and caching)."""
        return f"{self.space}:{self.spec}"

    def digest(self) -> str:
        """A short hash of :meth:`key`, safe to use in file names."""
        return hashlib.sha1(self.key().encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, str]:
        return {"space": self.space, "spec": self.spec}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Genotype:
        return cls(space=str(data["space"]), spec=str(data["spec"]))

    def __str__(self) -> str:
        return self.key()


@dataclass(frozen=True)
class Measurement:
    """A metric's value with its unit; never a bare float.

    ``stats`` holds the spread of repeated measurements (median, p10, p90, cv, n ...);
    ``env`` the environment it was measured in (device, library versions, threads, shape ...).
    """

    metric: str
    value: float
    unit: str
    device: str | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"metric": self.metric, "value": self.value, "unit": self.unit}
        if self.device is not None:
            data["device"] = self.device
        if self.stats:
            data["stats"] = dict(self.stats)
        if self.env:
            data["env"] = dict(self.env)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(
            metric=str(data["metric"]),
            value=float(data["value"]),
            unit=str(data["unit"]),
            device=data.get("device"),
            stats=dict(data.get("stats", {})),
            env=dict(data.get("env", {})),
        )


class TrialState(str, enum.Enum):
    """QUEUED: asked, not started; RUNNING: being evaluated; then COMPLETE or FAILED."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.FAILED)


@dataclass(frozen=True)
class Candidate:
    """What a strategy asks to evaluate.

    ``parent`` is the trial number whose trained weights the candidate starts from;
    ``transfer`` describes how they map onto the child (JSON-able, e.g. a morphism);
    ``fidelity`` scales the evaluation cost (e.g. training epochs), ``None`` for the default;
    ``info`` is strategy bookkeeping kept with the trial (generation, preference vector ...).
    """

    genotype: Genotype
    parent: int | None = None
    transfer: Mapping[str, Any] | None = None
    fidelity: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """Identity for deduplication: the genotype, and the fidelity when one is set."""
        base = self.genotype.key()
        return base if self.fidelity is None else f"{base}@{self.fidelity:g}"

    def to_json(self) -> dict[str, Any]:
        return {
            "genotype": self.genotype.to_json(),
            "parent": self.parent,
            "transfer": dict(self.transfer) if self.transfer is not None else None,
            "fidelity": self.fidelity,
            "info": dict(self.info),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Candidate:
        return cls(
            genotype=Genotype.from_json(data["genotype"]),
            parent=data.get("parent"),
            transfer=data.get("transfer"),
            fidelity=data.get("fidelity"),
            info=dict(data.get("info") or {}),
        )


@dataclass(frozen=True)
class Trial:
    """One evaluation of a candidate, as stored in the run."""

    number: int
    candidate: Candidate
    state: TrialState
    measurements: Mapping[str, Measurement] = field(default_factory=dict)
    error: str | None = None
    started: float | None = None  # unix time, seconds
    finished: float | None = None

    @property
    def genotype(self) -> Genotype:
        return self.candidate.genotype

    @property
    def parent(self) -> int | None:
        return self.candidate.parent

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def value(self, metric: str) -> float:
        """The value of ``metric``; NaN when the trial has no such measurement."""
        measurement = self.measurements.get(metric)
        return measurement.value if measurement is not None else math.nan

    def with_result(
        self,
        state: TrialState,
        measurements: Mapping[str, Measurement] | None = None,
        error: str | None = None,
        finished: float | None = None,
    ) -> Trial:
        return replace(
            self,
            state=state,
            measurements=dict(measurements or {}),
            error=error,
            finished=finished,
        )
