"""``hwnas compare``: several runs side by side by cost and result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.app import app, user_errors


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path], typer.Argument(metavar="RUN_DIR...", help="Two or more run directories.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Write compare.json, compare.csv and the plots into this directory."),
    ] = None,
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="Plot format png or svg; repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Compare runs by what they found and what it cost.

    Prints per run: strategy, evaluations, wall time, device-hours (evaluation time summed
    over trials, plus training outside them such as a supernet's), the training part, front
    size, hypervolume with one normalisation for all runs, and how many members of the joint
    front (all runs' trials together) it found; then the joint front with each member's run.
    With --out, also plots hypervolume over evaluations, wall time and device-hours, and the
    joint front coloured by run. The runs are only read.

    Examples:

    \b
      hwnas compare runs/nb201-nsga2 runs/nb201-random
      hwnas compare runs/a runs/b runs/c --out runs/compare-abc
    """
    import json

    from hwnas.compare import compare_runs, render_table, to_json, write_comparison
    from hwnas.errors import ConfigError

    with user_errors():
        formats = list(fmt or ["png"])
        unknown = [f for f in formats if f not in ("png", "svg")]
        if unknown:
            raise ConfigError(f"unknown plot format(s) {unknown}; choose png or svg")
        comparison = compare_runs(run_dirs)
        typer.echo(
            json.dumps(to_json(comparison), indent=2) if as_json else render_table(comparison)
        )
        if out is not None:
            for path in write_comparison(comparison, out, formats=formats):
                typer.echo(str(path), err=as_json)
