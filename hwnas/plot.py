"""Plots of one run or several: the Pareto front, a pairwise scatter matrix, parallel
coordinates and hypervolume over evaluations, written as PNG and SVG into the run's ``plots/``.

matplotlib's object-oriented API on the Agg canvas, never pyplot: no display is ever needed and
no process-wide state (backend, figure registry) changes. Figures have a fixed size in inches
and a fixed DPI, so every file of one kind has the same pixel size (see :func:`pixel_size`).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

import hwnas.rundir as rundir
from hwnas.config import RunConfig
from hwnas.errors import ConfigError
from hwnas.files import atomic_write
from hwnas.objectives.base import (
    Constraint,
    Direction,
    Objective,
)
from hwnas.objectives.pareto import hypervolume, is_feasible, normalise, objective_matrix
from hwnas.plot_axes import (
    COUNT_FORMATTER,
    mark_outliers,
    readable_count,
    robust_bounds,
    robust_limits,
)
from hwnas.results import HV_REFERENCE, Front, read_run, read_store
from hwnas.store import RunStore
from hwnas.types import Trial, TrialState

DPI = 100
#: Figure sizes in inches by plot kind; comparison plots ("compare-front" ...) use their kind's.
FIGSIZES: dict[str, tuple[float, float]] = {
    "front": (8.0, 6.0),
    "pairs": (9.0, 9.0),
    "parallel": (10.0, 6.0),
    "hypervolume": (8.0, 5.0),
    "progress": (8.0, 5.0),
}
FORMATS = ("png", "svg")

_FRONT_COLOR = "#e6550d"
_KNEE_COLOR = "#ffd92f"
_FEASIBLE_COLOR = "#3182bd"
# Background layers with more points than this are drawn as pixels inside the SVG, which
# keeps a 15,000-trial SVG small; the front, the knee and all text stay vectors.
_RASTER_ABOVE = 2000


# -- reading runs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunData:
    """One run as plots and reports need it: config, trials, front and strategy events."""

    run_dir: Path
    config: RunConfig
    trials: list[Trial]
    front: Front
    events: list[dict[str, Any]]
    label: str

    @property
    def objectives(self) -> list[Objective]:
        return self.front.objectives

    @property
    def constraints(self) -> list[Constraint]:
        return self.front.constraints


def load_run(run_dir: str | os.PathLike[str], *, label: str | None = None) -> RunData:
    """Read a run through :func:`hwnas.results.read_run` (read-only, units from its stored
    measurements: no dataset, table or torch needed) and label it for plots."""
    path = Path(run_dir)
    run = read_run(path)
    return RunData(
        path, run.config, run.trials, run.front, run.events, label or path.resolve().name
    )


def run_from_store(store: RunStore, *, label: str | None = None) -> RunData:
    """:func:`load_run` on an open store (a caller may open it with its own connection)."""
    run = read_store(store)
    path = store.run_dir
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


# -- figures --------------------------------------------------------------------------------
@dataclass
class Plot:
    """A rendered figure; ``name`` is its file stem (``front``, ``compare-hypervolume`` ...)."""

    name: str
    caption: str
    figure: Figure

    def to_bytes(self, fmt: str = "png") -> bytes:
        buffer = io.BytesIO()
        _save(self.figure, buffer, fmt)
        return buffer.getvalue()


def pixel_size(name: str) -> tuple[int, int]:
    """Width and height in pixels of the PNG of plot ``name`` (``front``, ``compare-pairs`` ...)."""
    width, height = FIGSIZES[name.removeprefix("compare-")]
    return round(width * DPI), round(height * DPI)


def _figure(kind: str) -> Figure:
    fig = Figure(figsize=FIGSIZES[kind], dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, target: Any, fmt: str) -> None:
    if fmt == "svg":
        # A fixed salt and no date make the SVG byte-identical for the same run.
        with rc_context({"svg.hashsalt": "hwnas"}):
            fig.savefig(target, format="svg", dpi=DPI, metadata={"Date": None})
    else:
        fig.savefig(target, format="png", dpi=DPI, metadata={"Software": None})


def _staircase(points: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Vertices of the step line bounding what a 2-objective front dominates, in data units."""
    Z = points * signs
    Z = Z[np.lexsort((Z[:, 1], Z[:, 0]))]
    vertices = [Z[0]]
    for a, b in itertools.pairwise(Z):
        vertices += [np.array([b[0], a[1]]), b]
    return np.array(vertices) * signs


def _run_colors(n: int) -> list[Any]:
    palette = colormaps["tab10"]
    return [palette(i % 10) for i in range(n)]


def _front_values(run: RunData, objectives: Sequence[Objective]) -> np.ndarray:
    return _values(run.front.members, objectives)


def _draw_front_2d(ax: Axes, run: RunData, objectives: Sequence[Objective], color: Any) -> None:
    """The front's step line and its members on a 2-objective axis."""
    signs = np.array([o.sign for o in objectives])
    F = _front_values(run, objectives)
    F = F[np.isfinite(F).all(axis=1)]
    if not len(F):
        return
    steps = _staircase(F, signs)
    ax.plot(steps[:, 0], steps[:, 1], color=color, lw=1.6, zorder=3)
    ax.scatter(F[:, 0], F[:, 1], s=42, color=color, edgecolors="black", lw=0.6, zorder=4)


def _draw_knee(
    ax: Axes, run: RunData, objectives: Sequence[Objective], color: Any, *, text: bool
) -> None:
    """A star on the knee; ``text`` labels it, on the side facing the middle of the axes.

    Call after the scales are set, so that the side is chosen in display space.
    """
    knee = run.front.knee
    if knee is None:
        return
    x, y = (knee.value(o.metric) for o in objectives[:2])
    ax.scatter([x], [y], marker="*", s=340, color=color, edgecolors="black", lw=0.9, zorder=5)
    if not text:
        return
    ax.get_xlim(), ax.get_ylim()  # settle the lazy autoscaling before asking for positions
    fx, fy = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))
    ax.annotate(
        f"knee: trial {knee.number}",
        (x, y),
        xytext=(-12 if fx > 0.5 else 12, -16 if fy > 0.5 else 16),
        textcoords="offset points",
        ha="right" if fx > 0.5 else "left",
        va="center",
        fontsize=9,
        zorder=6,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9},
    )


def _front_figure(run: RunData) -> Plot:
    objectives = run.objectives[:2]
    units = run.front.units
    fig = _figure("front")
    ax = fig.add_subplot()
    groups = _groups(run, objectives)
    members = {t.number for t in run.front.members}
    rest = _values([t for t in groups.feasible if t.number not in members], objectives)
    ax.scatter(
        *rest.T, s=14, color=_FEASIBLE_COLOR, alpha=0.45, lw=0, label="feasible",
        rasterized=len(rest) > _RASTER_ABOVE,
    )  # fmt: skip
    if groups.infeasible:
        bad = _values(groups.infeasible, objectives)
        ax.scatter(*bad.T, s=18, marker="x", color="0.55", lw=0.9, label="infeasible")
    if groups.failed or groups.failed_without_values:
        failed = _values(groups.failed, objectives)
        drawn = len(groups.failed)
        total = drawn + groups.failed_without_values
        text = f"failed ({total})"
        if drawn < total:
            text = f"failed ({total}, {drawn or 'none'} with values to draw)"
        ax.scatter(*failed.T, s=22, marker="x", color="#d62728", lw=1.1, label=text)
    _draw_front_2d(ax, run, objectives, _FRONT_COLOR)
    ax.plot([], [], color=_FRONT_COLOR, marker="o", mec="black", label="Pareto front")
    for c in run.constraints:
        for axis, o in enumerate(objectives):
            if c.metric == o.metric:
                line = ax.axvline if axis == 0 else ax.axhline
                line(c.bound, color="0.3", ls="--", lw=1, label=f"constraint {c}")
    _axes_2d(ax, [run], objectives, units)
    _draw_knee(ax, run, objectives, _KNEE_COLOR, text=True)
    if run.front.knee is not None:
        ax.scatter(
            [], [], marker="*", s=120, color=_KNEE_COLOR, edgecolors="black",
            label=f"knee (trial {run.front.knee.number})",
        )  # fmt: skip
    counts = run.front.counts
    ax.set_title(
        f"{run.label}: {counts['complete']} complete, {counts['failed']} failed; "
        f"front {counts['front']}, normalised hypervolume {run.front.hypervolume:.4f}",
        fontsize=10,
    )
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return Plot("front", "Trials and Pareto front (step line); the star marks the knee.", fig)


def _axes_2d(
    ax: Axes, runs: Sequence[RunData], objectives: Sequence[Objective], units: dict[str, str]
) -> None:
    every = np.vstack([_values(r.trials, objectives) for r in runs])
    keep = np.vstack([_must_show(r, objectives) for r in runs])
    for axis, o in enumerate(objectives):
        log = _log_scale(every[:, axis])
        set_scale, set_label = (
            (ax.set_xscale, ax.set_xlabel) if axis == 0 else (ax.set_yscale, ax.set_ylabel)
        )
        if log:
            set_scale("log")
        set_label(axis_label(o, units.get(o.metric, "")))
        # Outliers (10%-accuracy cells) must not squeeze the front into a corner.
        limits = robust_limits(every[:, axis], keep[:, axis], log=log)
        if limits is not None:
            (ax.set_xlim if axis == 0 else ax.set_ylim)(*limits)
        if units.get(o.metric) == "count":
            (ax.xaxis if axis == 0 else ax.yaxis).set_major_formatter(COUNT_FORMATTER)
    mark_outliers(ax, every[:, :2])
    ax.grid(True, alpha=0.3)


def _must_show(run: RunData, objectives: Sequence[Objective]) -> np.ndarray:
    """Values that axis limits always include: the front members (knee among them)."""
    return _values(run.front.members, objectives)


def _compare_front_figure(
    runs: Sequence[RunData], objectives: Sequence[Objective], hv: dict[str, float]
) -> Plot:
    units = _merged_units(runs)
    fig = _figure("front")
    ax = fig.add_subplot()
    for run, color in zip(runs, _run_colors(len(runs))):
        feasible = _values(_groups(run, objectives).feasible, objectives)
        ax.scatter(
            *feasible.T,
            s=9,
            color=color,
            alpha=0.18,
            lw=0,
            rasterized=len(feasible) > _RASTER_ABOVE,
        )
        _draw_front_2d(ax, run, objectives, color)
        _draw_knee(ax, run, objectives, color, text=False)
        ax.plot(
            [],
            [],
            color=color,
            marker="o",
            mec="black",
            label=f"{run.label}: front {len(run.front.members)}, hypervolume {hv[run.label]:.4f}"
            + (f", knee trial {run.front.knee.number}" if run.front.knee is not None else ""),
        )
    _axes_2d(ax, runs, objectives, units)
    ax.set_title("Pareto fronts compared (faint: all feasible trials; stars: knees)", fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return Plot("compare-front", "Pareto fronts of the compared runs.", fig)


def _pairs_figure(runs: Sequence[RunData], objectives: Sequence[Objective]) -> Plot:
    """Lower-triangle scatter matrix: one panel per pair of objectives."""
    units = _merged_units(runs)
    k = len(objectives)
    single = len(runs) == 1
    colors = [_FRONT_COLOR] if single else _run_colors(len(runs))
    fig = _figure("pairs")
    grid = fig.subplots(k - 1, k - 1, squeeze=False)
    every = np.vstack([_values(r.trials, objectives) for r in runs])
    logs = [_log_scale(every[:, j]) for j in range(k)]
    keep = np.vstack([_must_show(r, objectives) for r in runs])
    lims = [robust_limits(every[:, j], keep[:, j], log=logs[j]) for j in range(k)]
    counts = [units.get(o.metric) == "count" for o in objectives]
    beyond = 0
    for row in range(k - 1):
        for col in range(k - 1):
            ax = grid[row][col]
            i, j = row + 1, col  # y metric, x metric
            if col > row:
                ax.set_axis_off()
                continue
            for run, color in zip(runs, colors):
                groups = _groups(run, objectives)
                if single:
                    feasible = _values(groups.feasible, objectives)
                    ax.scatter(
                        feasible[:, j], feasible[:, i], s=7, color="0.6", alpha=0.5, lw=0,
                        rasterized=len(feasible) > _RASTER_ABOVE,
                    )  # fmt: skip
                    bad = _values(groups.infeasible + groups.failed, objectives)
                    ax.scatter(bad[:, j], bad[:, i], s=8, marker="x", color="0.75", lw=0.6)
                F = _front_values(run, objectives)
                ax.scatter(F[:, j], F[:, i], s=16, color=color, edgecolors="black", lw=0.3)
                if run.front.knee is not None:
                    knee = _values([run.front.knee], objectives)[0]
                    ax.scatter(
                        [knee[j]],
                        [knee[i]],
                        marker="*",
                        s=150,
                        color=_KNEE_COLOR if single else color,
                        edgecolors="black",
                        lw=0.7,
                    )
                    ax.annotate(
                        str(run.front.knee.number), (knee[j], knee[i]), xytext=(6, 5),
                        textcoords="offset points", fontsize=7, zorder=6,
                    )  # fmt: skip
            for axis, metric_index in (("x", j), ("y", i)):
                if logs[metric_index]:
                    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
                if lims[metric_index] is not None:
                    (ax.set_xlim if axis == "x" else ax.set_ylim)(*lims[metric_index])
                if counts[metric_index]:
                    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(COUNT_FORMATTER)
            beyond = max(beyond, mark_outliers(ax, every[:, [j, i]]))
            ax.tick_params(labelsize=7, labelbottom=row == k - 2, labelleft=col == 0)
            if row == k - 2:
                ax.set_xlabel(
                    axis_label(objectives[j], units.get(objectives[j].metric, ""), short=True),
                    fontsize=8,
                )
            if col == 0:
                ax.set_ylabel(
                    axis_label(objectives[i], units.get(objectives[i].metric, ""), short=True),
                    fontsize=8,
                )
            ax.grid(True, alpha=0.3)
    _pairs_legend(grid[0][k - 2] if k > 2 else None, runs, colors, single, objectives, beyond)
    title = runs[0].label if single else "compared runs"
    fig.suptitle(f"{title}: objectives pairwise (arrows point to better)", fontsize=10)
    name = "pairs" if single else "compare-pairs"
    return Plot(name, "Every pair of objectives; coloured: Pareto front, star: knee.", fig)


def _pairs_legend(
    ax: Axes | None,
    runs: Sequence[RunData],
    colors: list[Any],
    single: bool,
    objectives: Sequence[Objective],
    beyond: int,
) -> None:
    if ax is None:
        return
    handles = []
    if single:
        groups = _groups(runs[0], objectives)
        handles.append(ax.scatter([], [], s=14, color="0.6", label="feasible"))
        if groups.infeasible or groups.failed:
            handles.append(
                ax.scatter([], [], s=14, marker="x", color="0.75", label="infeasible or failed")
            )
        handles.append(
            ax.scatter([], [], s=30, color=colors[0], edgecolors="black", label="Pareto front")
        )
        knee = runs[0].front.knee
        if knee is not None:
            handles.append(
                ax.scatter(
                    [], [], s=120, marker="*", color=_KNEE_COLOR, edgecolors="black",
                    label=f"knee (trial {knee.number}, number beside the star)",
                )
            )  # fmt: skip
    else:
        for run, color in zip(runs, colors):
            handles.append(
                ax.scatter(
                    [], [], s=30, color=color, edgecolors="black", label=f"{run.label} front"
                )
            )
        handles.append(
            ax.scatter(
                [], [], s=120, marker="*", color="white", edgecolors="black",
                label="knee (trial number beside the star)",
            )
        )  # fmt: skip
    if beyond:
        handles.append(
            ax.scatter(
                [], [], s=28, marker="D", facecolors="none", edgecolors="0.35",
                label="beyond the axes (drawn on the edge)",
            )
        )  # fmt: skip
    ax.legend(handles=handles, loc="center", fontsize=8, frameon=False)


def _parallel_figure(runs: Sequence[RunData], objectives: Sequence[Objective]) -> Plot:
    """Parallel coordinates, each axis scaled from its worst value (bottom) to its best (top)."""
    units = _merged_units(runs)
    single = len(runs) == 1
    k = len(objectives)
    bounds = normalisation_bounds(runs, objectives)
    cut = np.zeros(k, dtype=bool)
    if bounds is not None:
        # Outliers (10%-accuracy cells) would press every other line against one end.
        feasible = [t for r in runs for t in r.trials if is_feasible(t, r.constraints)]
        F = objective_matrix(feasible, objectives)
        F = F[np.isfinite(F).all(axis=1)]
        keep = np.vstack([objective_matrix(r.front.members, objectives) for r in runs])
        ideal, nadir, cut = robust_bounds(F, keep)
        bounds = ideal, nadir
    fig = _figure("parallel")
    ax = fig.add_subplot()
    xs = np.arange(k)

    def scaled(trials: Sequence[Trial]) -> np.ndarray:
        Z = normalise(objective_matrix(trials, objectives), *bounds) if bounds else np.empty((0, k))
        return 1.0 - np.minimum(Z, 1.0)  # best at the top; beyond the worst end on the bottom

    if bounds is not None:
        if single:
            run = runs[0]
            background = scaled(_groups(run, objectives).feasible)
            segments = [np.column_stack([xs, z]) for z in background if np.isfinite(z).all()]
            ax.add_collection(
                LineCollection(
                    segments, colors="0.65", lw=0.6, alpha=0.35,
                    rasterized=len(segments) > _RASTER_ABOVE,
                )
            )  # fmt: skip
            F = scaled(run.front.members)
            cmap = colormaps["viridis"]
            for n, z in enumerate(F):
                ax.plot(xs, z, color=cmap(n / max(len(F) - 1, 1)), lw=1.4, alpha=0.9)
        for run, color in zip(runs, [None] if single else _run_colors(len(runs))):
            if not single:
                for z in scaled(run.front.members):
                    ax.plot(xs, z, color=color, lw=1.1, alpha=0.7)
            if run.front.knee is not None:
                ax.plot(
                    xs,
                    scaled([run.front.knee])[0],
                    color="black" if single else color,
                    lw=3.2,
                    ls="-" if single else "--",
                    label=f"{run.label} knee (trial {run.front.knee.number})",
                )
        ideal, nadir = bounds
        for j, o in enumerate(objectives):
            ax.axvline(j, color="black", lw=0.8)
            unit = units.get(o.metric, "")
            best, worst = o.sign * ideal[j], o.sign * nadir[j]
            box = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85}
            ax.text(j, 1.04, _readable(best, unit), ha="center", va="bottom", fontsize=8, bbox=box)
            worst_text = _readable(worst, unit) + (" or worse" if cut[j] else "")
            ax.text(j, -0.04, worst_text, ha="center", va="top", fontsize=8, bbox=box)
        if single:
            ax.plot([], [], color="0.65", lw=1, label="feasible trials")
            ax.plot(
                [], [], color=colormaps["viridis"](0.5), lw=1.4,
                label=f"Pareto front (purple to yellow: best to worst {objectives[0].metric})",
            )  # fmt: skip
        else:
            for run, color in zip(runs, _run_colors(len(runs))):
                ax.plot([], [], color=color, lw=1.1, label=f"{run.label} front")
        fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.set_xlim(-0.3, k - 0.7)
    ax.set_ylim(-0.12, 1.12)
    ax.set_xticks(xs, [axis_label(o, units.get(o.metric, ""), short=True) for o in objectives])
    ax.set_yticks([])
    ax.set_ylabel("scaled per axis: worst (bottom) to best (top)")
    what = "grey: feasible trials, colour: Pareto front" if single else "colour: each run's front"
    ax.set_title(f"{runs[0].label if single else 'compared runs'}: {what}", fontsize=10)
    name = "parallel" if single else "compare-parallel"
    return Plot(name, "Parallel coordinates; each axis runs from worst to best.", fig)


def _readable(value: float, unit: str) -> str:
    """Counts as ``325 k``; other values with their unit."""
    return readable_count(value) if unit == "count" else format_value(value, unit)


def _hypervolume_figure(
    runs: Sequence[RunData],
    objectives: Sequence[Objective],
    bounds: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[Plot, dict[str, float]]:
    single = len(runs) == 1
    fig = _figure("hypervolume")
    ax = fig.add_subplot()
    finals: dict[str, float] = {}
    for run, color in zip(runs, [_FRONT_COLOR] if single else _run_colors(len(runs))):
        if bounds is None:
            finals[run.label] = 0.0
            continue
        x, hv = hypervolume_trace(run.trials, objectives, run.constraints, *bounds)
        finals[run.label] = float(hv[-1]) if len(hv) else 0.0
        ax.step(
            x, hv, where="post", color=color, lw=1.6, label=f"{run.label}: {finals[run.label]:.4f}"
        )
    scope = "this run" if single else "all compared runs"
    ax.set_xlabel(
        "evaluations (count, in order of completion)\n"
        f"objectives scaled by the best and worst feasible values of {scope}, "
        f"reference {HV_REFERENCE} per axis",
        fontsize=9,
    )
    ax.set_ylabel("normalised hypervolume, higher is better")
    ax.set_title("Normalised hypervolume over evaluations", fontsize=10)
    top = max([1.0, *finals.values()])
    ax.set_ylim(0.0, top if top <= 1.0 else top * 1.05)  # never past 1 unless a value is
    ax.grid(True, alpha=0.3)
    if bounds is not None:
        ax.legend(loc="lower right", fontsize=8)
    name = "hypervolume" if single else "compare-hypervolume"
    return Plot(name, "Normalised hypervolume after each evaluation.", fig), finals


def _progress_figure(runs: Sequence[RunData], objective: Objective) -> Plot:
    """One objective: every trial's value and the best so far, in order of completion."""
    units = _merged_units(runs)
    single = len(runs) == 1
    fig = _figure("progress")
    ax = fig.add_subplot()
    for run, color in zip(runs, [_FRONT_COLOR] if single else _run_colors(len(runs))):
        finished = sorted(
            (t for t in run.trials if t.state.finished),
            key=lambda t: (t.finished if t.finished is not None else math.inf, t.number),
        )
        ok = [is_feasible(t, run.constraints) for t in finished]
        values = np.array(
            [
                objective.sign * t.value(objective.metric) if f else np.inf
                for t, f in zip(finished, ok)
            ]
        )
        x = np.arange(1, len(finished) + 1)
        shown = np.isfinite(values)
        ax.scatter(x[shown], objective.sign * values[shown], s=10, color=color, alpha=0.4, lw=0)
        best = np.minimum.accumulate(values) if len(values) else values
        finite = np.isfinite(best)
        ax.step(
            x[finite],
            objective.sign * best[finite],
            where="post",
            color=color,
            label=f"{run.label}: best so far",
        )
    ax.set_xlabel("evaluations (count, in order of completion)")
    ax.set_ylabel(axis_label(objective, units.get(objective.metric, "")))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    name = "progress" if single else "compare-progress"
    return Plot(name, "Feasible trials' values and the best so far.", fig)


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


def render_plots(runs: Sequence[RunData]) -> list[Plot]:
    """The figures for one run, or the comparison figures for several."""
    if not runs:
        raise ConfigError("give at least one run directory to plot")
    objectives = _common_objectives(runs)
    k = len(objectives)
    if k == 1:
        return [_progress_figure(runs, objectives[0])]
    bounds = normalisation_bounds(runs, objectives)
    hv_plot, finals = _hypervolume_figure(runs, objectives, bounds)
    plots = []
    if len(runs) == 1:
        plots += [_front_figure(runs[0])] if k == 2 else []
    elif k == 2:
        plots.append(_compare_front_figure(runs, objectives, finals))
    if k > 2:
        plots += [_pairs_figure(runs, objectives), _parallel_figure(runs, objectives)]
    return [*plots, hv_plot]


# -- files ----------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A file name made of letters, digits, ``_``, ``.`` and ``-`` only (never ``..``)."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "plot"
    return cleaned.replace("..", "_")


def _unique_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Run directory names, with the parent added (then a number) where two would clash."""
    names = [d.resolve().name for d in run_dirs]
    labels = [
        f"{d.resolve().parent.name}/{n}" if names.count(n) > 1 else n
        for d, n in zip(run_dirs, names)
    ]
    return [
        f"{label} #{i + 1}" if labels.count(label) > 1 else label for i, label in enumerate(labels)
    ]


def plot_runs(
    run_dirs: Sequence[str | os.PathLike[str]],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Write the plots of one run, or the comparison of several, and return the files.

    Files go to the first run's ``plots/`` unless ``out_dir`` is given: ``front``,
    ``hypervolume`` (two objectives) or ``pairs``, ``parallel``, ``hypervolume`` (more), each
    as PNG and SVG; comparisons are named ``compare-*``.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown plot format(s) {unknown}; choose from: {', '.join(FORMATS)}")
    if not run_dirs:
        raise ConfigError("give at least one run directory to plot")
    dirs = [Path(d) for d in run_dirs]
    runs = [load_run(d, label=label) for d, label in zip(dirs, _unique_labels(dirs))]
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"--out '{out_dir}' is a file; give a directory for the plots")
    written = []
    for plot in render_plots(runs):
        for fmt in formats:
            name = f"{safe_name(plot.name)}.{fmt}"
            buffer = io.BytesIO()
            _save(plot.figure, buffer, fmt)
            # Atomic, and inside a run directory never through a planted symlink.
            if out_dir is None:
                written.append(
                    rundir.write_file(dirs[0], f"{rundir.PLOTS}/{name}", buffer.getvalue())
                )
            else:
                written.append(atomic_write(_inside(Path(out_dir), name), buffer.getvalue()))
    return written


def _inside(directory: Path, name: str) -> Path:
    """``directory / name``, refusing anything that would land elsewhere."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create '{directory}': {exc.strerror}") from None
    path = (directory / name).resolve()
    if path.parent != directory.resolve():
        raise ConfigError(f"refusing to write '{name}' outside '{directory}'")
    return path
