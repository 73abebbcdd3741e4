"""``hwnas compare``: several runs side by side, by what they cost as well as what they found.

A table (strategy, evaluations, wall time, device-hours and the training part of them, front
size, hypervolume with one normalisation for all runs, members of the joint front) and plots:
hypervolume over evaluations, over wall time and over device-hours; the front of all runs
together, each member coloured by the run that found it. Runs are read through
:func:`hwnas.plot.data.load_run` and :class:`hwnas.store.RunStore` in read-only mode: nothing is
written into them and no evaluator is built.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hwnas.config import format_duration
from hwnas.errors import ConfigError
from hwnas.files import atomic_write
from hwnas.objectives.base import Objective
from hwnas.objectives.pareto import front_indices, is_feasible
from hwnas.plot.data import (
    RunData,
    _common_objectives,
    axis_label,
    format_value,
    hypervolume_trace,
    load_run,
    normalisation_bounds,
)
from hwnas.plot.fronts import _staircase
from hwnas.plot.render import _unique_labels, safe_name
from hwnas.plot.style import DPI, Plot
from hwnas.results import highest_fidelity
from hwnas.store import RunStore
from hwnas.types import Trial

#: Figure sizes in inches: the three cost panels side by side, and the joint front.
COST_FIGSIZE = (15.0, 4.6)
JOINT_FIGSIZE = (8.0, 6.0)
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
# Strategy events that carry cumulative training seconds spent outside trials (a supernet).
_TRAINING_EVENTS = {"supernet_epoch": "seconds", "supernet_front": "train_seconds"}


@dataclass(frozen=True)
class RunCost:
    """One run's row of the comparison. Times in seconds, hypervolume in the joint scaling."""

    label: str
    run_dir: str
    strategy: str
    evaluations: int
    failed: int
    wall_seconds: float
    device_seconds: float
    training_seconds: float
    front_size: int
    hypervolume: float
    joint_members: int

    @property
    def device_hours(self) -> float:
        return self.device_seconds / 3600.0


@dataclass(frozen=True)
class Curve:
    """A run's hypervolume after each finished trial, against three cost axes."""

    evaluations: np.ndarray
    wall_seconds: np.ndarray
    device_hours: np.ndarray
    hypervolume: np.ndarray


@dataclass(frozen=True)
class JointMember:
    """A member of the joint front: the first run's trial of it, and every run that found it."""

    trial: Trial
    runs: tuple[str, ...]
    #: The trial number in each of ``runs``.
    numbers: tuple[int, ...]

    def found_by(self) -> str:
        """``nsga2 trial 14`` or ``nsga2 trial 14 = random trial 9``."""
        return " = ".join(f"{r} trial {n}" for r, n in zip(self.runs, self.numbers))


@dataclass(frozen=True)
class Comparison:
    runs: list[RunData]
    objectives: list[Objective]
    rows: list[RunCost]
    curves: list[Curve]
    #: The front of all runs' trials together, best first by the first objective.
    joint_front: list[JointMember]


def compare_runs(run_dirs: Sequence[str | os.PathLike[str]]) -> Comparison:
    """Read the runs (read-only) and compare them; they must optimise the same objectives."""
    if len(run_dirs) < 2:
        raise ConfigError("give at least two run directories to compare")
    dirs = [Path(d) for d in run_dirs]
    runs = [load_run(d, label=label) for d, label in zip(dirs, _unique_labels(dirs))]
    objectives = _common_objectives(runs)
    bounds = normalisation_bounds(runs, objectives)
    joint = _joint_front(runs, objectives)
    rows, curves = [], []
    for run in runs:
        curve = _curve(run, objectives, bounds)
        curves.append(curve)
        finished = [t for t in run.trials if t.state.finished]
        rows.append(
            RunCost(
                label=run.label,
                run_dir=str(run.run_dir),
                strategy=run.config.strategy,
                evaluations=len(finished),
                failed=run.front.counts["failed"],
                wall_seconds=float(curve.wall_seconds[-1]) if len(finished) else 0.0,
                device_seconds=sum(t.duration or 0.0 for t in finished) + _outside_total(run),
                training_seconds=_training_seconds(run),
                front_size=len(run.front.members),
                hypervolume=float(curve.hypervolume[-1]) if len(finished) else 0.0,
                joint_members=sum(run.label in m.runs for m in joint),
            )
        )
    return Comparison(runs, objectives, rows, curves, joint)


# -- costs ----------------------------------------------------------------------------------
def _finished_in_order(run: RunData) -> list[Trial]:
    return sorted(
        (t for t in run.trials if t.state.finished),
        key=lambda t: (t.finished if t.finished is not None else math.inf, t.number),
    )


def _created(run_dir: Path) -> float | None:
    with RunStore.open(run_dir, read_only=True) as store:
        value = store.get_meta("created")
    return float(value) if value else None


def _outside_trials(run: RunData) -> list[tuple[float, float]]:
    """(time, cumulative seconds) of training done outside trials, e.g. a supernet's."""
    points = []
    for event in run.events:
        key = _TRAINING_EVENTS.get(str(event.get("kind")))
        value = event.get(key) if key else None
        if isinstance(value, (int, float)) and isinstance(event.get("time"), (int, float)):
            points.append((float(event["time"]), float(value)))
    return sorted(points)


def _outside_total(run: RunData) -> float:
    """Seconds of training outside trials, all of it (the counters are cumulative)."""
    return max((v for _, v in _outside_trials(run)), default=0.0)


def _training_seconds(run: RunData) -> float:
    """Training inside trials (the ``train_time`` metric) plus training outside them."""
    inside = sum(t.value("train_time") for t in run.trials if "train_time" in t.measurements)
    return float(inside) + _outside_total(run)


def _curve(
    run: RunData, objectives: Sequence[Objective], bounds: tuple[np.ndarray, np.ndarray] | None
) -> Curve:
    finished = _finished_in_order(run)
    n = len(finished)
    if bounds is None:
        hv = np.zeros(n)
    else:
        _, hv = hypervolume_trace(run.trials, objectives, run.constraints, *bounds)
    starts = [t.started for t in run.trials if t.started is not None]
    created = _created(run.run_dir)
    origin = min([*starts, *([created] if created is not None else [])], default=0.0)
    ends = np.array([t.finished if t.finished is not None else origin for t in finished])
    wall = np.maximum(ends - origin, 0.0)
    durations = np.cumsum([t.duration or 0.0 for t in finished]) if n else np.zeros(0)
    outside = _outside_trials(run)
    extra = np.array([max((v for when, v in outside if when <= end), default=0.0) for end in ends])
    device_hours = (durations + (extra if n else 0.0)) / 3600.0
    return Curve(np.arange(1, n + 1), wall, device_hours, np.asarray(hv, dtype=float))


def _joint_front(runs: Sequence[RunData], objectives: Sequence[Objective]) -> list[JointMember]:
    """Non-dominated feasible trials of all runs; a genotype several runs found counts once."""
    found: dict[str, JointMember] = {}
    for run in runs:
        for t in highest_fidelity(run.trials):
            if not is_feasible(t, run.constraints):
                continue
            key = t.genotype.key()
            if key in found:
                m = found[key]
                if run.label not in m.runs:
                    found[key] = JointMember(m.trial, (*m.runs, run.label), (*m.numbers, t.number))
            else:
                found[key] = JointMember(t, (run.label,), (t.number,))
    pool = list(found.values())
    indices = front_indices([m.trial for m in pool], objectives)
    first = objectives[0]
    return sorted(
        (pool[i] for i in indices),
        key=lambda m: (first.sign * m.trial.value(first.metric), m.runs),
    )


# -- text -----------------------------------------------------------------------------------
_HEADER = (
    "run", "strategy", "evaluations", "failed", "wall time", "device time", "training",
    "front", "hypervolume", "in joint front",
)  # fmt: skip


def table_rows(comparison: Comparison) -> list[list[str]]:
    return [
        [
            r.label,
            r.strategy,
            str(r.evaluations),
            str(r.failed),
            format_duration(r.wall_seconds),
            f"{r.device_hours:.3g} h"
            if r.device_hours >= 0.01
            else format_duration(r.device_seconds),
            format_duration(r.training_seconds) if r.training_seconds else "–",
            str(r.front_size),
            f"{r.hypervolume:.4f}",
            f"{r.joint_members} of {len(comparison.joint_front)}",
        ]
        for r in comparison.rows
    ]


def render_table(comparison: Comparison) -> str:
    """The comparison as aligned plain text, never wrapped, then the joint front."""
    rows = [list(_HEADER), *table_rows(comparison)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.append(
        "hypervolume: every run scaled by the best and worst feasible values of all compared "
        "runs; device time: evaluation time summed over trials plus training outside them "
        "(device-hours in compare.json)."
    )
    units = {m: u for run in comparison.runs for m, u in run.front.units.items()}
    lines.append("")
    lines.append(f"joint front ({len(comparison.joint_front)} members, best first):")
    for m in comparison.joint_front:
        t = m.trial
        values = ", ".join(
            f"{o.metric} {format_value(t.value(o.metric), units.get(o.metric, ''), 6)}"
            for o in comparison.objectives
        )
        lines.append(f"  {m.found_by()}: {values}  {t.genotype.spec}")
    return "\n".join(lines)


def to_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "objectives": [str(o) for o in comparison.objectives],
        "hypervolume": "normalised together: each objective scaled by the best and worst "
        "feasible values of all compared runs",
        "runs": [{**asdict(r), "device_hours": r.device_hours} for r in comparison.rows],
        "joint_front": [
            {
                "found_by": [{"run": r, "trial": n} for r, n in zip(m.runs, m.numbers)],
                "genotype": m.trial.genotype.spec,
                "values": {o.metric: m.trial.value(o.metric) for o in comparison.objectives},
            }
            for m in comparison.joint_front
        ],
    }


# -- plots ----------------------------------------------------------------------------------
def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _time_unit(seconds: float) -> tuple[str, float]:
    """The unit that shows ``seconds`` as a readable number, and seconds per unit."""
    if seconds >= 2 * 3600:
        return "hours", 3600.0
    if seconds >= 120:
        return "minutes", 60.0
    if seconds >= 1:
        return "seconds", 1.0
    return "milliseconds", 1e-3


def cost_figure(comparison: Comparison) -> Plot:
    """Hypervolume over evaluations, over wall time and over device-hours, one line per run."""
    fig = _figure(COST_FIGSIZE)
    axes = fig.subplots(1, 3, sharey=True)
    wall_unit, wall_scale = _time_unit(
        max((float(c.wall_seconds.max(initial=0)) for c in comparison.curves), default=0.0)
    )
    device_unit, device_scale = _time_unit(
        3600.0 * max((float(c.device_hours.max(initial=0)) for c in comparison.curves), default=0.0)
    )
    xlabels = (
        "evaluations (count, in order of completion)",
        f"wall time since the run started ({wall_unit})",
        f"device time: evaluations + training outside them (device-{device_unit})",
    )
    for row, curve, color in zip(comparison.rows, comparison.curves, _COLORS * 9):
        xs = (
            curve.evaluations,
            curve.wall_seconds / wall_scale,
            curve.device_hours * 3600.0 / device_scale,
        )
        for ax, x in zip(axes, xs):
            ax.step(x, curve.hypervolume, where="post", color=color, lw=1.6, label=row.label)
    totals = (
        [float(c.wall_seconds[-1]) for c in comparison.curves if len(c.wall_seconds)],
        [float(c.device_hours[-1]) for c in comparison.curves if len(c.device_hours)],
    )
    for i, (ax, label) in enumerate(zip(axes, xlabels)):
        ends = totals[i - 1] if i else []
        # Runs whose costs differ a hundredfold (a table lookup against a trained predictor)
        # would leave the cheap one as a vertical line at zero on a linear axis.
        if ends and min(ends) > 0 and max(ends) / min(ends) >= 20:
            ax.set_xscale("log")
            label += ", log scale"
        else:
            ax.set_xlim(left=0)
        ax.set_xlabel(label, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("hypervolume (scaled across runs), higher is better", fontsize=9)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Hypervolume by cost: evaluations, wall time, device time", fontsize=11)
    return Plot("compare-cost", "Hypervolume over evaluations, wall time and device time.", fig)


def joint_front_figure(comparison: Comparison) -> Plot:
    """The front of all runs together (first two objectives), coloured by the contributing run."""
    objectives = comparison.objectives[:2]
    units = {m: u for run in comparison.runs for m, u in run.front.units.items()}
    fig = _figure(JOINT_FIGSIZE)
    ax = fig.add_subplot()
    colors = dict(zip((r.label for r in comparison.rows), _COLORS * 9))
    for run in comparison.runs:
        xs = [t.value(objectives[0].metric) for t in run.front.members]
        ys = [t.value(objectives[1].metric) for t in run.front.members]
        ax.scatter(xs, ys, s=18, color=colors[run.label], alpha=0.35, lw=0)
    members = comparison.joint_front
    if members:
        signs = np.array([o.sign for o in objectives])
        points = np.array([[m.trial.value(o.metric) for o in objectives] for m in members])
        ax.plot(*_staircase(points, signs).T, color="0.3", lw=1.0, zorder=3)
    for label in colors:
        own = [m.trial for m in members if m.runs[0] == label]
        ax.scatter(
            [t.value(objectives[0].metric) for t in own],
            [t.value(objectives[1].metric) for t in own],
            s=70, color=colors[label], edgecolors="black", lw=0.8, zorder=4,
            label=f"{label}: found {sum(label in m.runs for m in members)} of {len(members)}",
        )  # fmt: skip
    for m in members:
        t = m.trial
        ax.annotate(
            " = ".join(f"{r} {n}" for r, n in zip(m.runs, m.numbers))
            if len(m.runs) > 1 else str(t.number),
            (t.value(objectives[0].metric), t.value(objectives[1].metric)),
            xytext=(5, 3), textcoords="offset points", fontsize=7, color="0.25",
        )  # fmt: skip
    ax.set_xlabel(axis_label(objectives[0], units.get(objectives[0].metric, "")))
    ax.set_ylabel(axis_label(objectives[1], units.get(objectives[1].metric, "")))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    ax.set_title(
        "Joint front of all runs: colour = the run that found it, label = its trial",
        fontsize=9,
    )
    return Plot("compare-joint-front", "The front of all runs together, by contributing run.", fig)


def write_comparison(
    comparison: Comparison, out_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png",)
) -> list[Path]:
    """Write ``compare.json``, ``compare.csv`` and the plots into ``out_dir``."""
    target = Path(out_dir)
    for run in comparison.runs:
        if target.resolve() == run.run_dir.resolve():
            raise ConfigError(f"--out '{target}' is a compared run; choose another directory")
    target.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["run", "strategy", "evaluations", "failed", "wall_s", "device_hours", "training_s",
         "front", "hypervolume", "joint_members", "run_dir"]
    )  # fmt: skip
    for r in comparison.rows:
        writer.writerow(
            [r.label, r.strategy, r.evaluations, r.failed, f"{r.wall_seconds:.3f}",
             f"{r.device_hours:.6g}", f"{r.training_seconds:.3f}", r.front_size,
             f"{r.hypervolume:.6f}", r.joint_members, r.run_dir]
        )  # fmt: skip
    written = [
        atomic_write(target / "compare.json", json.dumps(to_json(comparison), indent=2) + "\n"),
        atomic_write(target / "compare.csv", buffer.getvalue()),
    ]
    plots = [cost_figure(comparison)]
    if len(comparison.objectives) >= 2:
        plots.append(joint_front_figure(comparison))
    for plot in plots:
        for fmt in formats:
            written.append(
                atomic_write(target / f"{safe_name(plot.name)}.{fmt}", plot.to_bytes(fmt))
            )
    return written
