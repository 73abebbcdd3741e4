"""``hwnas surrogate fit``: a surrogate benchmark (a predictor fitted on a table) in one file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.app import app, user_errors

Opt = typer.Option

surrogate_app = typer.Typer(name="surrogate", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(surrogate_app, help="Surrogate benchmarks: predictors fitted on a table.")


@surrogate_app.command("fit")
def fit(
    table: Annotated[Path, typer.Argument(metavar="TABLE", help="A tabular benchmark file.")],
    space: Annotated[str, Opt(help="The table's search space (see `hwnas spaces`).")],
    out: Annotated[Path, Opt(help="The surrogate file to write (.npz).")],
    metric: Annotated[
        list[str] | None, Opt("--metric", help="A column to predict; repeatable (default: all).")
    ] = None,
    train_fraction: Annotated[
        float, Opt(help="Share of the rows to fit on; the error is measured on the rest.")
    ] = 0.9,
    seed: Annotated[int, Opt(help="Seed of the split and the networks.")] = 0,
    as_json: Annotated[bool, Opt("--json", help="Print the held-out error as JSON.")] = False,
) -> None:
    """Fit an ensemble of small networks on a table; `--benchmark surrogate:FILE` then
    evaluates any architecture of the space with it. Stores no pickle: arrays and JSON.

    Prints the held-out error per metric (Kendall tau and mean absolute error on the rows not
    fitted on); every run on the surrogate keeps it with each measurement.

    \b
    Examples:
      hwnas surrogate fit nb201_cifar10_hw.csv --space nb201 --out nb201.npz \\
          --metric acc_cifar10 --metric lat_fpga_ms --train-fraction 0.1
      hwnas search --space nb201 --benchmark surrogate:nb201.npz \\
          --objective acc_cifar10:max --objective lat_fpga_ms:min --budget 100
    """
    from hwnas.errors import ConfigError
    from hwnas.evaluate.table import TabularBenchmark
    from hwnas.spaces import make_space
    from hwnas.surrogates.table import SurrogateBenchmark

    with user_errors():
        if out.suffix != ".npz":
            raise ConfigError(f"--out '{out}' must end in .npz (a surrogate file)")
        if out.parent and not out.parent.is_dir():
            raise ConfigError(f"the folder of --out '{out}' does not exist")
        search_space = make_space(space)
        surrogate = SurrogateBenchmark.fit(
            TabularBenchmark(path=table, space=search_space),
            metrics=metric or None,
            train_fraction=train_fraction,
            seed=seed,
        )
        path = surrogate.save(out)
    if as_json:
        typer.echo(json.dumps(surrogate.fidelity, indent=2))
        return
    meta = surrogate.meta
    typer.echo(
        f"{path}: fitted on {meta['trained_on']} of {meta['rows']} rows; "
        f"error on the other {meta['rows'] - meta['trained_on']}:"
    )
    for name, error in surrogate.fidelity.items():
        typer.echo(f"  {name}: Kendall tau {error['kendall_tau']:.3f}, MAE {error['mae']:.4g}")
