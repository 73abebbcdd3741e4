"""Commands that run and inspect searches: search, resume, front, spaces, strategies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

import hwnas.rundir as rundir
from hwnas.cli.app import app, user_errors

Opt = typer.Option


@app.command()
def search(
    space: Annotated[str, Opt(help="Search space (see `hwnas spaces`).")] = "mobilenet",
    strategy: Annotated[
        str | None,
        Opt(
            help="Search strategy (see `hwnas strategies`); default: the one measured best "
            "for the situation (bo on a table, lemonade when training; see docs/bo.md)."
        ),
    ] = None,
    objective: Annotated[
        list[str] | None, Opt("--objective", "-o", help="NAME, NAME:min or NAME:max; repeatable.")
    ] = None,
    constraint: Annotated[
        list[str] | None,
        Opt("--constraint", "-c", help="e.g. 'params<=1.5e6' or 'latency<=5ms'; repeatable."),
    ] = None,
    benchmark: Annotated[
        Path | None, Opt(help="Tabular benchmark (CSV, JSON or Parquet) to evaluate with.")
    ] = None,
    dataset: Annotated[
        str | None, Opt(help="Dataset to train on: digits, cifar10, mnist, imagefolder:PATH ...")
    ] = None,
    data_dir: Annotated[Path | None, Opt(help="Where datasets are or are downloaded to.")] = None,
    device: Annotated[
        str | None, Opt(help="Target device profile for hardware metrics (see `hwnas devices`).")
    ] = None,
    budget: Annotated[int | None, Opt(help="Number of evaluations.")] = None,
    time_budget: Annotated[
        str | None, Opt("--time", help="Wall-time budget, e.g. 90s, 10m, 1h.")
    ] = None,
    seed: Annotated[int, Opt(help="Random seed; the same seed gives the same trials.")] = 0,
    out: Annotated[Path | None, Opt(help="Run directory to create.")] = None,
    space_option: Annotated[
        list[str] | None, Opt("--space-option", help="Space setting KEY=VALUE (width_mult=0.5).")
    ] = None,
    strategy_option: Annotated[
        list[str] | None,
        Opt("--strategy-option", help="Strategy setting KEY=VALUE (population_size=40)."),
    ] = None,
    # -- training ------------------------------------------------------------------------
    epochs: Annotated[float | None, Opt(help="Training epochs per candidate.")] = None,
    batch_size: Annotated[int | None, Opt(help="Training batch size.")] = None,
    data_fraction: Annotated[
        float | None, Opt(help="Fraction of the training split used for proxy training.")
    ] = None,
    optimizer: Annotated[str | None, Opt(help="sgd or adamw.")] = None,
    lr: Annotated[float | None, Opt(help="Peak learning rate (cosine schedule).")] = None,
    weight_decay: Annotated[float | None, Opt(help="Weight decay.")] = None,
    label_smoothing: Annotated[float | None, Opt(help="Label smoothing.")] = None,
    train_device: Annotated[
        str | None, Opt(help="Where candidates train: auto (CUDA when present), cpu or cuda.")
    ] = None,
    fidelity: Annotated[
        str | None, Opt(help="Multi-fidelity: none (default) or sh (successive halving).")
    ] = None,
    train_option: Annotated[
        list[str] | None, Opt("--train-option", help="Other training setting KEY=VALUE.")
    ] = None,
    # -- hardware cost -------------------------------------------------------------------
    latency: Annotated[
        str | None, Opt(help="How latency is obtained: measured (default), lut or predictor.")
    ] = None,
    bad_cells: Annotated[
        str | None,
        Opt(help="Bad table cells (empty, NaN, inf, text): error (default) or fail."),
    ] = None,
    # -- execution and outputs -----------------------------------------------------------
    executor: Annotated[str | None, Opt(help="local (default), process or ray.")] = None,
    workers: Annotated[int | None, Opt(help="Parallel evaluations (process and ray).")] = None,
    ray_address: Annotated[
        str | None, Opt(help="Ray cluster address (e.g. auto); implies --executor ray.")
    ] = None,
    export: Annotated[
        str | None, Opt(help="Export at the end: knee, front, best:METRIC or trial:N.")
    ] = None,
    plot: Annotated[bool, Opt(help="Write plots at the end.")] = False,
    progress: Annotated[
        bool, Opt(help="Show progress: a bar in a terminal, plain lines in a log.")
    ] = True,
) -> None:
    """Search for the Pareto front of the objectives and write it to the run directory.

    Examples:

    \b
      hwnas search --space nb201 --benchmark nb201_cifar10_hw.csv \\
          --objective acc_cifar10:max --objective lat_fpga_ms:min \\
          --strategy nsga2 --budget 300 --seed 0 --out runs/nb201-fpga
      hwnas search --device cpu --dataset digits --space mobilenet \\
          --strategy random --budget 12 --out runs/quick
    """
    from hwnas.api import search as run_search
    from hwnas.config import parse_duration
    from hwnas.spaces import parse_options

    with user_errors():
        training = _given(
            epochs=epochs,
            batch_size=batch_size,
            data_fraction=data_fraction,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            label_smoothing=label_smoothing,
            train_device=train_device,
            fidelity=fidelity,
        )
        training.update(parse_options(train_option or []))
        if ray_address is not None and executor is None:
            executor = "ray"
        objectives = list(objective or _default_objectives(dataset, device))
        if strategy is None:
            from hwnas.search import default_strategy

            strategy = default_strategy(benchmark=benchmark, dataset=dataset)
        out_dir = out or Path("runs") / f"{space}-{strategy}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = run_search(
            space=space,
            strategy=strategy,
            objectives=objectives,
            constraints=list(constraint or []),
            benchmark=benchmark,
            dataset=dataset,
            data_dir=data_dir,
            device=device,
            budget=budget,
            time_budget=parse_duration(time_budget) if time_budget else None,
            seed=seed,
            out=out_dir,
            space_options=parse_options(space_option or []),
            strategy_options=parse_options(strategy_option or []),
            training=training,
            profiling=_given(latency=latency, bad_cells=bad_cells),
            executor=_given(kind=executor, workers=workers, ray_address=ray_address),
            post=_given(export=export, plot=plot or None),
            progress=progress,
        )
        _print_result(result)
    if export or plot:
        _print_outputs(result.run_dir, export=export is not None, plot=plot)
    _exit_if_all_failed(result)


def _print_outputs(run_dir: Path, *, export: bool, plot: bool) -> None:
    """What --export and --plot wrote; exit 1 when an export failed verification."""
    from hwnas.export.notes import is_untrained

    if plot:
        typer.echo(f"plots: {run_dir / rundir.PLOTS}")
    failed = 0
    for path in sorted((run_dir / rundir.EXPORTS).glob("*.json")) if export else []:
        data = json.loads(path.read_text())
        verification = data.get("verification") or {}
        if verification.get("passed"):
            onnx = path.parent / (data.get("onnx") or {}).get("file", "")
            untrained = (
                " (UNTRAINED weights: train it before deploying)" if is_untrained(data) else ""
            )
            typer.echo(f"export {data.get('name')}: verified{untrained}, {onnx}")
        else:
            failed += 1
            typer.echo(f"export {data.get('name')}: FAILED: {verification.get('reason')} ({path})")
    if failed:
        raise typer.Exit(1)


def _given(**values: object) -> dict[str, object]:
    """Only the settings the user gave, so that library defaults apply to the rest."""
    return {k: v for k, v in values.items() if v is not None}


def _default_objectives(dataset: str | None, device: str | None) -> list[str]:
    if dataset is None:
        from hwnas.errors import ConfigError

        raise ConfigError("give at least one --objective (a column of the benchmark table)")
    return ["error", *(["latency"] if device else []), "params"]


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")],
    budget: Annotated[int | None, typer.Option(help="Total number of evaluations.")] = None,
    time_budget: Annotated[
        str | None, typer.Option("--time", help="Wall-time budget for this session.")
    ] = None,
    executor: Annotated[
        str | None, Opt(help="Change the executor: local, process or ray (default: the run's).")
    ] = None,
    workers: Annotated[int | None, Opt(help="Parallel evaluations (process and ray).")] = None,
    ray_address: Annotated[
        str | None, Opt(help="Ray cluster address (e.g. auto); implies --executor ray.")
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Show progress: a bar in a terminal, plain lines in a log.")
    ] = True,
) -> None:
    """Continue a killed or finished run without repeating or losing completed trials.

    Trials that were being evaluated when the run stopped are evaluated again.

    Example: hwnas resume runs/nb201-fpga --budget 500 --executor process --workers 2
    """
    from hwnas.api import resume as run_resume
    from hwnas.config import parse_duration

    with user_errors():
        if ray_address is not None and executor is None:
            executor = "ray"
        result = run_resume(
            run_dir,
            budget=budget,
            time_budget=parse_duration(time_budget) if time_budget else None,
            executor=_given(kind=executor, workers=workers, ray_address=ray_address),
            progress=progress,
        )
        _print_result(result)
    _exit_if_all_failed(result)


def _exit_if_all_failed(result) -> None:
    """Exit status 1 when the run has trials and every one of them failed."""
    counts = result.front.counts
    if counts["trials"] and not counts["complete"]:
        typer.echo(
            f"error: every trial of {result.run_dir} failed ({counts['failed']}); see their "
            "errors with `hwnas lineage` or in hwnas.db, fix the cause and search again",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def front(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print front.json instead of a table.")
    ] = False,
) -> None:
    """Compute a run's Pareto front, write front.csv and front.json, and print it.

    Example: hwnas front runs/nb201-fpga
    """
    from hwnas.results import open_run

    with user_errors():
        result = open_run(run_dir, write=True)
        if as_json:
            typer.echo(json.dumps(result.front.to_json(), indent=2))
        else:
            _print_result(result)


@app.command()
def spaces() -> None:
    """List the search spaces.

    Example: hwnas spaces
    """
    from rich.table import Table

    from hwnas.console import make_console
    from hwnas.spaces import SPACES, make_space

    table = Table("space", "architectures", "description")
    for entry in SPACES.entries():
        size = make_space(entry.name).size()
        table.add_row(entry.name, f"{size:,}" if size else "unbounded", entry.summary)
    make_console().print(table)


@app.command()
def strategies() -> None:
    """List the search strategies.

    Example: hwnas strategies
    """
    from rich.table import Table

    from hwnas.console import make_console
    from hwnas.search import STRATEGIES

    table = Table("strategy", "description")
    for entry in STRATEGIES.entries():
        table.add_row(entry.name, entry.summary)
    make_console().print(table)


def _print_result(result) -> None:
    from hwnas.cli.fronts import print_front
    from hwnas.console import make_console

    print_front(make_console(), result)


@app.command()
def genotype(
    architecture: Annotated[str, typer.Argument(help="SPACE:SPEC, e.g. macro:02012100.")],
    space_option: Annotated[
        list[str] | None, typer.Option("--space-option", help="Space setting KEY=VALUE.")
    ] = None,
) -> None:
    """Check an architecture and print its canonical form, layers and cheap costs.

    Example: hwnas genotype macro:02012100
    """
    from hwnas.console import make_console
    from hwnas.evaluate.cheap import CheapProfileProvider
    from hwnas.spaces import make_space, parse_genotype, parse_options

    with user_errors():
        space_name, spec = parse_genotype(architecture)
        space = make_space(space_name, parse_options(space_option or []))
        g = space.parse(spec)
        console = make_console()
        console.print(f"space      {g.space}\ncanonical  {g.spec}\nkey digest {g.digest()}")
        try:
            for i, layer in enumerate(space.layers(g)):
                console.print(
                    f"  layer {i:>2}: {layer.op:<14} kernel {layer.kernel} "
                    f"expansion {layer.expansion:g} channels {layer.channels} "
                    f"stride {layer.stride} groups {layer.groups}"
                )
        except NotImplementedError:
            pass
        for m in CheapProfileProvider(space, num_classes=10).profile(g).values():
            console.print(f"{m.metric:<10} {m.value:,.0f} {m.unit}")
