"""Commands that turn a run into deliverables: export, plot, report, lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.app import app, user_errors


# -- export ---------------------------------------------------------------------------------
@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.")],
    select: Annotated[
        str, typer.Option(help="Which trials: knee, front, best:METRIC or trial:N.")
    ] = "knee",
    constraint: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint", "-c", help="Only trials meeting it, e.g. 'latency<=5ms'; repeatable."
        ),
    ] = None,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also write a static int8 (QDQ) model.")
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="File name in exports/ (default: from the selection).")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="Device profile to time the ONNX files on (default: the run's)."),
    ] = None,
    samples: Annotated[
        int, typer.Option(help="Validation images to compare PyTorch and onnxruntime on.")
    ] = 256,
    calibration_samples: Annotated[
        int, typer.Option(help="Training images to calibrate --int8 with.")
    ] = 128,
) -> None:
    """Export chosen trials to ONNX and verify them; files go to RUN_DIR/exports/.

    Each model gets its trained weights, is exported with a dynamic batch axis and verified:
    onnx's full check, onnxruntime against PyTorch on 32 random inputs and on validation
    images (|difference| <= 1e-4 + 1e-5 max |output|, same top-1 class), and timed on the run's
    device. A model that fails is reported with the reason in NAME.failed.json and no .onnx
    file; the command then exits with 1.

    Examples:

    \b
      hwnas export runs/quick
      hwnas export runs/quick --select front --int8
      hwnas export runs/quick --select best:error -c 'latency<=2ms' --name small
    """
    from hwnas.export.exporter import export_run

    with user_errors():
        results = export_run(
            run_dir,
            select=select,
            constraints=list(constraint or []),
            int8=int8,
            name=name,
            device=device,
            samples=samples,
            calibration_samples=calibration_samples,
        )
    _print_exports(results, int8=int8)
    failed = [r for r in results if not r.passed]
    if failed:
        typer.echo(
            f"error: {len(failed)} of {len(results)} exports failed verification; "
            f"see {failed[0].json_path}",
            err=True,
        )
        raise typer.Exit(1)


def _print_exports(results: list, *, int8: bool) -> None:
    from rich.table import Table

    from hwnas.console import make_console, print_line
    from hwnas.export.notes import is_untrained, untrained_note

    console = make_console()
    table = Table(title="ONNX exports (exports/)")
    columns = ("export", "trial", "weights", "verified", "max |Δ|", "top-1 agree", "ONNX", "search")
    for column in columns:
        left = column in ("export", "weights", "verified")
        table.add_column(column, justify="left" if left else "right")
    for r in results:
        latency = r.record.get("latency") or {}
        diff, agreement = r.max_abs_diff, r.top1_agreement
        table.add_row(
            r.name,
            str(r.trial) if r.trial is not None else "–",
            "UNTRAINED" if is_untrained(r.record) else "trained",
            "passed" if r.passed else "FAILED",
            f"{diff:.2g}" if diff is not None else "–",
            f"{agreement:.0%}" if agreement is not None else "–",
            _value(latency.get("onnx")),
            _value(latency.get("search_time")),
        )
    console.print(table)
    print_line(
        console,
        "top-1 agree: share of inputs where onnxruntime and PyTorch pick the same class. "
        "ONNX and search: latency of the exported file and the search's figure.",
    )
    for note in dict.fromkeys(untrained_note(r.record) for r in results if r.passed):
        if note:
            print_line(console, note)
    if int8:
        table = Table(title="int8 (static QDQ)")
        for column in ("export", "size fp32 → int8", "latency fp32 → int8", "accuracy fp32 → int8"):
            table.add_column(column, justify="left" if column == "export" else "right")
        for r in results:
            if r.passed:
                table.add_row(r.name, *_int8_cells(r.record.get("int8") or {}))
        console.print(table)
        for r in results:
            slower = (r.record.get("int8") or {}).get("note") if r.passed else None
            if slower:
                print_line(console, f"{r.name}: {slower}")
    for r in results:
        if r.passed:
            extra = f", {r.int8_path}" if r.int8_path else ""
            console.print(f"{r.name}: {r.onnx_path}{extra}, {r.json_path}", soft_wrap=True)
        else:
            console.print(f"{r.name} FAILED: {r.reason} ({r.json_path})", soft_wrap=True)


def _value(data: object) -> str:
    """``{"value", "unit"}`` from an export's JSON as short text."""
    if not isinstance(data, dict) or not isinstance(data.get("value"), (int, float)):
        return "–"
    number, unit = float(data["value"]), str(data.get("unit", ""))
    if unit == "B":
        return f"{number / 1e6:.3g} MB" if number >= 1e5 else f"{number / 1e3:.3g} kB"
    return f"{number:.4g} {unit}".strip()


def _int8_cells(data: dict) -> list[str]:
    if not data.get("written"):
        return [f"failed: {data.get('error', 'not run')}", "–", "–"]
    size, latency = data["size"], data.get("latency") or {}
    accuracy = data.get("accuracy") or {}

    def pair(block: dict) -> str:
        return f"{_value(block.get('fp32'))} → {_value(block.get('int8'))}" if block else "–"

    return [pair(size), pair(latency), pair(accuracy)]


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
    from hwnas.plot.render import plot_runs
    from hwnas.plot.style import FORMATS

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
    from hwnas.report.page import write_report

    with user_errors():
        path = write_report(run_dir)
    typer.echo(str(path))
