"""Entry points: every figure for some runs, written as PNG and SVG files."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import hwnas.rundir as rundir
from hwnas.errors import ConfigError
from hwnas.files import atomic_write
from hwnas.plot.data import RunData, _common_objectives, load_run, normalisation_bounds
from hwnas.plot.fronts import _compare_front_figure, _front_figure
from hwnas.plot.panels import _hypervolume_figure, _pairs_figure, _parallel_figure, _progress_figure
from hwnas.plot.style import FORMATS, Plot, _save


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
