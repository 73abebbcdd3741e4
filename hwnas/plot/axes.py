"""Axis helpers for the plots: limits that outliers cannot squeeze, counts in readable units.

A handful of trials far from the rest (NAS-Bench-201 cells that never learn sit at 10%
accuracy while the front lies between 85% and 95%) would otherwise take most of an axis. The
limits here cover the bulk of the values (Tukey's fences: the quartiles widened by 1.5
interquartile ranges) and every value that must show (front members, knees); the points beyond
are drawn on the edge of the axes with their own marker and counted in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

#: Interquartile ranges beyond the quartiles that still count as the bulk of the values.
IQR_REACH = 1.5


def readable_count(value: float) -> str:
    """``950``, ``325 k``, ``1.2 M``, ``3.4 G``: counts (parameters, MACs) as people read them."""
    if value is None or not math.isfinite(value):
        return "–"
    a = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= limit:
            return f"{value / limit:.3g} {suffix}"
    return f"{value:.3g}"


COUNT_FORMATTER = FuncFormatter(lambda value, _pos: readable_count(value))


def robust_limits(
    values: np.ndarray, keep: np.ndarray, *, log: bool, pad: float = 0.05
) -> tuple[float, float] | None:
    """Axis limits for ``values`` that always include ``keep`` and leave far outliers out."""
    v = values[np.isfinite(values)]
    k = keep[np.isfinite(keep)]
    if log:
        v, k = np.log10(v[v > 0]), np.log10(k[k > 0])
    if not len(v) and not len(k):
        return None
    if len(v):
        q1, q3 = np.percentile(v, [25, 75])
        reach = IQR_REACH * (q3 - q1)
        lo = max(float(v.min()), q1 - reach) if reach > 0 else float(v.min())
        hi = min(float(v.max()), q3 + reach) if reach > 0 else float(v.max())
    else:
        lo, hi = math.inf, -math.inf
    if len(k):
        lo, hi = min(lo, float(k.min())), max(hi, float(k.max()))
    margin = (hi - lo) * pad or max(abs(hi) * pad, 1e-9)
    lo, hi = lo - margin, hi + margin
    return (10**lo, 10**hi) if log else (lo, hi)


def mark_outliers(ax: Axes, points: np.ndarray) -> int:
    """Draw the ``points`` (x, y rows) that lie outside the axes' limits on its edge.

    Call after the limits are set. Returns how many there were; the legend entry says it.
    """
    P = points[np.isfinite(points).all(axis=1)] if len(points) else np.empty((0, 2))
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    outside = (P[:, 0] < x0) | (P[:, 0] > x1) | (P[:, 1] < y0) | (P[:, 1] > y1)
    if not outside.any():
        return 0
    edge = np.column_stack([np.clip(P[outside, 0], x0, x1), np.clip(P[outside, 1], y0, y1)])
    n = int(outside.sum())
    ax.scatter(
        edge[:, 0], edge[:, 1], s=28, marker="D", facecolors="none", edgecolors="0.35", lw=0.8,
        clip_on=False, zorder=2, label=f"{n} beyond the axes (drawn on the edge)",
    )  # fmt: skip
    return n


def set_robust_axes(
    ax: Axes,
    values: np.ndarray,
    keep: np.ndarray,
    logs: Sequence[bool],
    count_axes: Sequence[bool],
) -> None:
    """Limits per axis from :func:`robust_limits`; count axes read ``325 k``."""
    for axis in range(2):
        limits = robust_limits(values[:, axis], keep[:, axis], log=logs[axis])
        if limits is not None:
            (ax.set_xlim if axis == 0 else ax.set_ylim)(*limits)
        if count_axes[axis]:
            (ax.xaxis if axis == 0 else ax.yaxis).set_major_formatter(COUNT_FORMATTER)


def robust_bounds(F: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``F`` (minimisation form): low and high ends from :func:`robust_limits`
    without margin, and whether values lie beyond the high (worse) end."""
    lo, hi, cut = [], [], []
    for j in range(F.shape[1]):
        limits = robust_limits(F[:, j], keep[:, j], log=False, pad=0.0)
        a, b = limits if limits is not None else (0.0, 1.0)
        column = F[:, j][np.isfinite(F[:, j])]
        lo.append(min(a, float(column.min())) if len(column) else a)  # the best always shows
        hi.append(b)
        cut.append(bool(len(column)) and float(column.max()) > b)
    return np.array(lo), np.array(hi), np.array(cut)
