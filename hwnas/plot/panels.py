"""Multi-objective panels: pairwise fronts, parallel coordinates, hypervolume, progress."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from hwnas.objectives.base import (
    Objective,
)
from hwnas.objectives.pareto import is_feasible, normalise, objective_matrix
from hwnas.plot.axes import (
    COUNT_FORMATTER,
    mark_outliers,
    robust_bounds,
    robust_limits,
)
from hwnas.plot.data import (
    RunData,
    _groups,
    _log_scale,
    _merged_units,
    _readable,
    _values,
    axis_label,
    hypervolume_trace,
    normalisation_bounds,
)
from hwnas.plot.fronts import _front_values, _must_show
from hwnas.plot.style import _FRONT_COLOR, _KNEE_COLOR, _RASTER_ABOVE, Plot, _figure, _run_colors
from hwnas.results import HV_REFERENCE
from hwnas.types import Trial


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
