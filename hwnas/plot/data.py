"""What plots draw: runs read back (never rebuilding evaluators), labels, hypervolume traces."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.errors import ConfigError
from hwnas.objectives.base import (
    Constraint,
    Direction,
    Objective,
)
from hwnas.objectives.pareto import hypervolume, is_feasible, normalise, objective_matrix
from hwnas.plot.axes import (
    readable_count,
)
from hwnas.results import HV_REFERENCE, RunResults, read_run
from hwnas.types import Trial, TrialState


# -- reading runs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunData(RunResults):
    """One run as plots and reports need it: what :func:`read_run` reads, and its label."""

    label: str = ""


def load_run(run_dir: str | os.PathLike[str], *, label: str | None = None) -> RunData:
    """Read a run through :func:`hwnas.results.read_run` (read-only, units from its stored
    measurements: no dataset, table or torch needed) and label it for plots."""
    path = Path(run_dir)
    run = read_run(path)
    return RunData(
        path, run.config, run.trials, run.front, run.events, label or path.resolve().name
    )


# -- labels and numbers ---------------------------------------------------------------------
def axis_label(objective: Objective, unit: str, *, short: bool = False) -> str:
    """``"lat_fpga_ms (ms), lower is better"``; ``short`` gives ``"lat_fpga_ms (ms) ↓"``."""
    base = f"{objective.metric} ({unit})" if unit else objective.metric
    better_high = objective.direction is Direction.MAX
    if short:
        return f"{base} {'↑' if better_high else '↓'}"
    return f"{base}, {'higher' if better_high else 'lower'} is better"


def format_number(value: float | None, digits: int = 6) -> str:
    """Integers with thousands separators (``1,269,610``), others to ``digits`` digits."""
    if value is None or math.isnan(value):
        return "–"
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def format_value(value: float | None, unit: str = "", digits: int = 4) -> str:
    """A number with its unit (``2.906 ms``); counts go without one."""
    text = format_number(value, digits)
    return f"{text} {unit}" if unit and unit != "count" and text != "–" else text


def _values(trials: Sequence[Trial], objectives: Sequence[Objective]) -> np.ndarray:
    """Rows of objective values in their own units and directions (NaN where missing)."""
    rows = [[t.value(o.metric) for o in objectives] for t in trials]
    return np.array(rows, dtype=float).reshape(len(trials), len(objectives))


def _log_scale(values: np.ndarray) -> bool:
    """Positive values spanning two decades or more (parameters, MACs, bytes) read better in log."""
    v = values[np.isfinite(values)]
    return bool(len(v)) and bool((v > 0).all()) and v.max() / v.min() >= 100.0


@dataclass(frozen=True)
class _Groups:
    """A run's finished trials split the way the plots colour them."""

    feasible: list[Trial]
    infeasible: list[Trial]
    failed: list[Trial]
    failed_without_values: int


def _groups(run: RunData, objectives: Sequence[Objective]) -> _Groups:
    feasible, infeasible, failed, blank = [], [], [], 0
    for t in run.trials:
        has_values = bool(np.isfinite(_values([t], objectives)).all())
        if t.state is TrialState.FAILED:
            if has_values:
                failed.append(t)
            else:
                blank += 1
        elif t.state is TrialState.COMPLETE and has_values:
            (feasible if is_feasible(t, run.constraints) else infeasible).append(t)
    return _Groups(feasible, infeasible, failed, blank)


# -- hypervolume over evaluations -----------------------------------------------------------
def normalisation_bounds(
    runs: Sequence[RunData], objectives: Sequence[Objective]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Ideal and nadir (minimisation form) over the feasible trials of all ``runs``."""
    rows = [
        objective_matrix([t for t in r.trials if is_feasible(t, r.constraints)], objectives)
        for r in runs
    ]
    F = np.vstack(rows) if rows else np.empty((0, len(objectives)))
    F = F[np.isfinite(F).all(axis=1)]
    if not len(F):
        return None
    return F.min(axis=0), F.max(axis=0)


def hypervolume_trace(
    trials: Sequence[Trial],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    ideal: np.ndarray,
    nadir: np.ndarray,
    ref: float = HV_REFERENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """(evaluations, hypervolume): the normalised hypervolume after each finished trial.

    Same definition as :func:`hwnas.objectives.pareto.normalised_hypervolume` (in [0, 1]).

    Trials count in the order they finished (failed ones too: they spent budget). Objectives
    are scaled so that ``ideal`` maps to 0 and ``nadir`` to 1, reference ``ref`` per axis, as
    :class:`hwnas.results.Front` does; with one run's own bounds the last value equals its
    front's hypervolume.
    """
    finished = sorted(
        (t for t in trials if t.state.finished),
        key=lambda t: (t.finished if t.finished is not None else math.inf, t.number),
    )
    k = len(objectives)
    front = np.empty((0, k))
    current = 0.0
    hv = np.zeros(len(finished))
    for i, trial in enumerate(finished):
        if is_feasible(trial, constraints):
            z = np.maximum(normalise(objective_matrix([trial], objectives), ideal, nadir)[0], 0)
            # Only a point no current member weakly dominates changes the hypervolume.
            if np.isfinite(z).all() and not (front <= z).all(axis=1).any():
                front = np.vstack([front[~(z <= front).all(axis=1)], z])
                current = hypervolume(front, np.full(k, ref)) / ref**k
        hv[i] = current
    return np.arange(1, len(finished) + 1), hv


def _readable(value: float, unit: str) -> str:
    """Counts as ``325 k``; other values with their unit."""
    return readable_count(value) if unit == "count" else format_value(value, unit)


def _merged_units(runs: Sequence[RunData]) -> dict[str, str]:
    units: dict[str, str] = {}
    for run in runs:
        for metric, unit in run.front.units.items():
            units.setdefault(metric, unit)
    return units


def _common_objectives(runs: Sequence[RunData]) -> list[Objective]:
    """The first run's objectives; every compared run must optimise the same ones."""
    first = runs[0]
    wanted = {(o.metric, o.direction) for o in first.objectives}
    for run in runs[1:]:
        if {(o.metric, o.direction) for o in run.objectives} != wanted:
            raise ConfigError(
                f"runs '{first.run_dir}' ({', '.join(map(str, first.objectives))}) and "
                f"'{run.run_dir}' ({', '.join(map(str, run.objectives))}) optimise different "
                "objectives; only runs with the same objectives can be compared"
            )
    return list(first.objectives)
