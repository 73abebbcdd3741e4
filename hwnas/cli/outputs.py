"""Commands that turn a run into deliverables: export, plot, report, lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.app import app, user_errors


# -- plot -----------------------------------------------------------------------------------
@app.command()
def plot(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(metavar="RUN_DIR", help="One run directory, or several to compare."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for the plots (default: the first run's plots/)."),
    ] = None,
    fmt: Annotated[
        list[str] | None,
        typer.Option("--format", help="png and/or svg (repeatable; default both)."),
    ] = None,
) -> None:
    """Plot a run's Pareto front and hypervolume, or compare several runs.

    Two objectives: the trials with the front as a step line and the knee marked; more: a
    pairwise scatter matrix and parallel coordinates; always the hypervolume over evaluations.
    Several runs are overlaid (compare-*.png), with one common hypervolume normalisation.

    Examples:

    \b
      hwnas plot runs/nb201-fpga
      hwnas plot runs/nb201-nsga2 runs/nb201-random --out runs/compare
    """
    from hwnas.plot import FORMATS, plot_runs

    with user_errors():
        paths = plot_runs(run_dirs, out_dir=out, formats=tuple(fmt or FORMATS))
    for path in paths:
        typer.echo(str(path))


# -- report ---------------------------------------------------------------------------------
@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.")],
) -> None:
    """Write RUN_DIR/report.html: one self-contained page with the front, plots and costs.

    The page embeds its plots and needs no network or JavaScript: summary, front table, plots,
    family tree of the front, exports, search cost (wall time, device hours), strategy events,
    environment and configuration.

    Example: hwnas report runs/nb201-fpga
    """
    from hwnas.report import write_report

    with user_errors():
        path = write_report(run_dir)
    typer.echo(str(path))
