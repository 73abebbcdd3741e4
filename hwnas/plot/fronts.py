"""Pareto-front figures: one run's front and several runs' fronts overlaid, knee starred."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from hwnas.objectives.base import (
    Objective,
)
from hwnas.plot.axes import (
    COUNT_FORMATTER,
    mark_outliers,
    robust_limits,
)
from hwnas.plot.data import RunData, _groups, _log_scale, _merged_units, _values, axis_label
from hwnas.plot.style import (
    _FEASIBLE_COLOR,
    _FRONT_COLOR,
    _KNEE_COLOR,
    _RASTER_ABOVE,
    Plot,
    _figure,
    _run_colors,
)


def _staircase(points: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Vertices of the step line bounding what a 2-objective front dominates, in data units."""
    Z = points * signs
    Z = Z[np.lexsort((Z[:, 1], Z[:, 0]))]
    vertices = [Z[0]]
    for a, b in itertools.pairwise(Z):
        vertices += [np.array([b[0], a[1]]), b]
    return np.array(vertices) * signs


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
