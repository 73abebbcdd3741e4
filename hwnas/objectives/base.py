"""Objectives (metric + direction) and constraints (metric + bound with a unit).

Units: every metric has one canonical unit (``latency`` in ms, ``size`` in bytes ...). A
constraint may be written in any unit of the same family (``latency<=5ms``, ``size<=2MiB``,
``params<=1.5e6``, ``macs<=300M``); it is converted to the metric's unit once, when resolved.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hwnas.errors import ConfigError


class Direction(str, enum.Enum):
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True)
class MetricInfo:
    unit: str
    direction: Direction
    description: str


# Metrics hwnas produces itself. Table columns may add others (their unit is inferred).
KNOWN_METRICS: Mapping[str, MetricInfo] = {
    "error": MetricInfo("%", Direction.MIN, "validation top-1 error"),
    "accuracy": MetricInfo("%", Direction.MAX, "validation top-1 accuracy"),
    "test_error": MetricInfo("%", Direction.MIN, "test-split top-1 error (final report only)"),
    "miou": MetricInfo("%", Direction.MAX, "mean intersection over union (segmentation)"),
    "latency": MetricInfo("ms", Direction.MIN, "inference latency on the target device, median"),
    "macs": MetricInfo(
        "MAC", Direction.MIN, "multiply-accumulates per image (flops counted as MACs)"
    ),
    "params": MetricInfo("count", Direction.MIN, "number of parameters"),
    "size": MetricInfo("B", Direction.MIN, "fp32 weight size"),
    "onnx_size": MetricInfo("B", Direction.MIN, "size of the exported ONNX file"),
    "peak_memory": MetricInfo("B", Direction.MIN, "peak inference memory (weights + activations)"),
    "energy": MetricInfo("mJ", Direction.MIN, "energy per inference"),
    "train_time": MetricInfo("s", Direction.MIN, "wall time of the candidate's training"),
}

# `flops` is the name most users type; hwnas counts multiply-accumulates and says so.
METRIC_ALIASES: Mapping[str, str] = {"flops": "macs", "acc": "accuracy", "mem": "peak_memory"}

# Unit families: factor to the family's base unit.
_UNITS: Mapping[str, Mapping[str, float]] = {
    "time": {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0},
    "bytes": {
        "B": 1.0,
        "KB": 1e3,
        "kB": 1e3,
        "MB": 1e6,
        "GB": 1e9,
        "KiB": 1024.0,
        "MiB": 1024.0**2,
        "GiB": 1024.0**3,
    },
    "count": {"count": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12},
    "MAC": {
        "MAC": 1.0,
        "MACs": 1.0,
        "k": 1e3,
        "K": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "KMAC": 1e3,
        "MMAC": 1e6,
        "GMAC": 1e9,
    },
    "energy": {"uJ": 1e-6, "mJ": 1e-3, "J": 1.0},
    "percent": {"%": 1.0},
}


def unit_family(unit: str) -> str | None:
    if unit == "MAC":
        return "MAC"
    if unit == "count":
        return "count"
    for family, units in _UNITS.items():
        if unit in units:
            return family
    return None


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` between two units of one family; raise ConfigError otherwise."""
    if from_unit == to_unit or from_unit == "":
        return value
    family = unit_family(to_unit)
    units = _UNITS.get(family or "", {})
    if from_unit not in units:
        allowed = ", ".join(u for u in units if u not in ("count", "MAC")) or "none"
        raise ConfigError(
            f"unit '{from_unit}' does not fit a metric measured in '{to_unit}'; "
            f"use one of: {allowed}"
        )
    return value * units[from_unit] / units[to_unit]


def canonical_metric(name: str) -> str:
    return METRIC_ALIASES.get(name, name)


def metric_info(name: str) -> MetricInfo | None:
    return KNOWN_METRICS.get(canonical_metric(name))


_SUFFIX_UNITS = (("_ms", "ms"), ("_us", "us"), ("_s", "s"), ("_mj", "mJ"), ("_bytes", "B"))


def infer_unit(column: str) -> str:
    """Best guess of a table column's unit from its name; '' when unknown."""
    info = metric_info(column)
    if info is not None:
        return info.unit
    lowered = column.lower()
    for suffix, unit in _SUFFIX_UNITS:
        if lowered.endswith(suffix):
            return unit
    if "acc" in lowered or lowered.endswith("error"):
        return "%"
    if lowered in ("flops", "macs") or lowered.endswith(("_flops", "_macs")):
        return "MAC"
    if "param" in lowered:
        return "count"
    return ""


def default_direction(metric: str) -> Direction:
    info = metric_info(metric)
    if info is not None:
        return info.direction
    lowered = metric.lower()
    if "acc" in lowered or "miou" in lowered or "score" in lowered:
        return Direction.MAX
    return Direction.MIN


_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"


@dataclass(frozen=True)
class Objective:
    """A metric to optimise. ``limit`` (in the metric's unit) makes it also a constraint."""

    metric: str
    direction: Direction = Direction.MIN
    limit: float | None = None

    @property
    def sign(self) -> float:
        """Multiply values by this to turn every objective into one to minimise."""
        return 1.0 if self.direction is Direction.MIN else -1.0

    def __str__(self) -> str:
        return f"{self.metric}:{self.direction.value}"


def parse_objective(text: str) -> Objective:
    """Parse ``NAME``, ``NAME:min`` or ``NAME:max``."""
    match = re.fullmatch(rf"\s*({_NAME})\s*(?::\s*(\w+))?\s*", text)
    if match is None:
        raise ConfigError(
            f"cannot read objective '{text}'; write NAME, NAME:min or NAME:max (e.g. latency:min)"
        )
    name, direction = match.group(1), match.group(2)
    if direction is None:
        return Objective(name, default_direction(name))
    try:
        return Objective(name, Direction(direction.lower()))
    except ValueError:
        raise ConfigError(
            f"objective '{text}' has direction '{direction}'; use :min or :max"
        ) from None


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound``; ``bound`` is in ``unit`` ('' = metric's own)."""

    metric: str
    op: str  # "<=" or ">="
    bound: float
    unit: str = ""

    def resolved(self, metric_unit: str) -> Constraint:
        """The same constraint with its bound converted into ``metric_unit``."""
        if self.unit and not metric_unit:
            raise ConfigError(
                f"constraint '{self}' has a unit but the unit of '{self.metric}' is unknown; "
                "write the bound without a unit, in the column's own unit"
            )
        bound = convert(self.bound, self.unit, metric_unit) if self.unit else self.bound
        return Constraint(self.metric, self.op, bound, metric_unit if self.unit else "")

    def violation(self, value: float) -> float:
        """0 when satisfied, else how far the value is past the bound (inf for NaN)."""
        if math.isnan(value):
            return math.inf
        excess = value - self.bound if self.op == "<=" else self.bound - value
        return max(excess, 0.0)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}{self.unit}"


def parse_constraint(text: str) -> Constraint:
    """Parse ``NAME<=VALUE[UNIT]`` or ``NAME>=VALUE[UNIT]`` (``<`` and ``>`` mean the same)."""
    match = re.fullmatch(
        rf"\s*({_NAME})\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ%]*)\s*",
        text,
    )
    if match is None:
        raise ConfigError(
            f"cannot read constraint '{text}'; write NAME<=VALUE[UNIT], "
            "e.g. 'params<=1.5e6' or 'latency<=5ms'"
        )
    name, op, number, unit = match.groups()
    op = {"<": "<=", ">": ">="}.get(op, op)
    if unit and unit_family(unit) is None and unit not in ("k", "K", "M", "G", "T"):
        raise ConfigError(
            f"constraint '{text}' has unknown unit '{unit}'; "
            "use e.g. ms, s, us, B, KB, MB, MiB, k, M, G, mJ or %"
        )
    return Constraint(name, op, float(number), unit)
