"""``hwnas lineage``: where a network came from (parents, morphisms, scores)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.app import app, user_errors


@app.command()
def lineage(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.")],
    trial: Annotated[
        str | None,
        typer.Argument(
            metavar="TRIAL",
            help="A trial number, or 'knee'; without it, the family tree of the whole front.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show a trial's line of descent: each ancestor, the morphisms that made it, its scores.

    Strategies with weight inheritance (lemonade, hillclimb) record every child's parent and
    the network morphisms applied to it; exact morphisms keep the parent's function,
    approximate ones are followed by distillation from the parent.

    Examples:

    \b
      hwnas lineage runs/lemonade-digits 37
      hwnas lineage runs/lemonade-digits knee
      hwnas lineage runs/lemonade-digits            # every front member's family tree
    """
    from hwnas.errors import ConfigError
    from hwnas.lineage import ancestry, front_family, render_ancestry, render_tree

    with user_errors():
        if trial is None:
            tree = front_family(run_dir)
            typer.echo(json.dumps(tree.to_json(), indent=2) if as_json else render_tree(tree))
            return
        if trial == "knee":
            from hwnas.results import read_run

            knee = read_run(run_dir).front.knee
            if knee is None:
                raise ConfigError("the run has no front yet, so no knee")
            number = knee.number
        elif trial.isdigit():
            number = int(trial)
        else:
            raise ConfigError(f"TRIAL must be a trial number or 'knee', not '{trial}'")
        line = ancestry(run_dir, number)
        if as_json:
            typer.echo(json.dumps([a.to_json() for a in line], indent=2))
        else:
            from hwnas.results import read_run

            typer.echo(render_ancestry(line, read_run(run_dir).front.units))
