"""Small HTML helpers of the report: escaping, tables, times, objective cells."""

from __future__ import annotations

import html
import importlib.metadata
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from hwnas.objectives.base import Objective
from hwnas.plot.data import RunData, format_number, format_value
from hwnas.types import Trial


# -- small helpers --------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "–"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, attrs: str = "") -> str:
    """A table; header cells are escaped here, row cells must already be HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{attrs}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _compact(value: Any) -> str:
    """A value from JSON as short escaped text; ``{value, unit}`` reads as ``3.2 ms``."""
    if isinstance(value, Mapping):
        if "value" in value and isinstance(value["value"], (int, float)):
            text = format_value(float(value["value"]), str(value.get("unit", "")))
            extras = {k: v for k, v in value.items() if k not in ("value", "unit")}
            return _e(text) + (f" <span class='note'>({_compact(extras)})</span>" if extras else "")
        return ", ".join(f"{_e(k)}: {_compact(v)}" for k, v in value.items()) or "–"
    if isinstance(value, (list, tuple)):
        return _e(json.dumps(value)) if len(value) <= 8 else _e(json.dumps(value[:8])[:-1] + ", …]")
    if isinstance(value, bool) or value is None:
        return _e(json.dumps(value))
    if isinstance(value, float):
        return _e(format_number(value))
    return _e(value)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _unit(run: RunData, metric: str) -> str:
    return run.front.units.get(metric, "")


def _objective_heading(run: RunData, objective: Objective) -> str:
    """``lat_fpga_ms (min, ms)``."""
    unit = _unit(run, objective.metric)
    return f"{objective.metric} ({objective.direction.value}{', ' + unit if unit else ''})"


def _objective_values(run: RunData, trial: Trial) -> str:
    return ", ".join(
        f"{_e(o.metric)} {_e(format_value(trial.value(o.metric), _unit(run, o.metric), 6))}"
        for o in run.objectives
    )


_LIBRARIES = ("hwnas", "numpy", "matplotlib", "moocore", "torch", "onnx", "onnxruntime")
_MAX_EVENT_ROWS = 200
