"""Commands for target devices and profiling: devices, devices lut, devices calibrate, profile."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from hwnas.cli.app import app, user_errors

Opt = typer.Option

devices_app = typer.Typer(
    name="devices",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)
app.add_typer(devices_app)

_DEVICE_HELP = "Device profile: a name from `hwnas devices` or the path of a .toml file."
_SPACE_OPTION_HELP = "Space setting KEY=VALUE (width_mult=0.5); repeatable."
_SHAPE_HELP = "Input shape C,H,W (default: the space's, e.g. 3,32,32)."


@devices_app.callback()
def devices(
    ctx: typer.Context,
    as_json: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the device profiles, whether each is usable on this machine and why not.

    \b
    Examples:
      hwnas devices
      hwnas devices lut --device cpu --space mobilenet
      hwnas devices calibrate --device cpu --space mobilenet --samples 200
    """
    if ctx.invoked_subcommand is not None:
        return
    from hwnas.devices import list_devices
    from hwnas.hardware import availability

    with user_errors():
        rows = [(p, availability(p)) for p in list_devices()]
    if as_json:
        data = [
            {**p.to_json(), "usable": s.usable, "reason": s.reason, "notes": list(s.notes)}
            for p, s in rows
        ]
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    from hwnas.console import make_console

    table = Table("device", "runtime", "usable here", "why not / notes", "description")
    for profile, state in rows:
        runtime = profile.runtime
        if profile.providers:
            runtime += " (" + ", ".join(_short(p) for p in profile.providers) + ")"
        usable = "yes" if state.usable else "no"
        why = state.reason if not state.usable else "; ".join(state.notes)
        table.add_row(profile.name, runtime, usable, why, profile.description)
    console = make_console()
    console.print(table)
    console.print("Any other profile: --device path/to/profile.toml (see docs/profiling.md).")


def _short(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr fed by ``callback(stage, done, total)``."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def callback(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        yield callback


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    from hwnas.errors import ConfigError

    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"cannot read input shape '{text}'; write C,H,W, e.g. 3,32,32")
    return shape


def _space(name: str, options: list[str] | None) -> Any:
    from hwnas.spaces import make_space, parse_options

    return make_space(name, parse_options(options or []))


@devices_app.command("lut")
def lut(
    device: Annotated[str, Opt(help=_DEVICE_HELP)] = "cpu",
    space: Annotated[str, Opt(help="Search space with per-layer blocks.")] = "mobilenet",
    space_option: Annotated[
        list[str] | None, Opt("--space-option", help=_SPACE_OPTION_HELP)
    ] = None,
    num_classes: Annotated[int, Opt(help="Classes of the head.")] = 10,
    input_shape: Annotated[str | None, Opt(help=_SHAPE_HELP)] = None,
    repeats: Annotated[
        int | None, Opt(help="Timed runs per entry (default: the profile's).")
    ] = None,
    seed: Annotated[int, Opt(help="Seed of the interleaving order.")] = 0,
    out: Annotated[
        Path | None, Opt(help="Also write the table here (e.g. for a `table` device profile).")
    ] = None,
    rebuild: Annotated[bool, Opt(help="Measure again even if the table is cached.")] = False,
    progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
) -> None:
    """Measure every distinct block of a space once on a device and cache the latency table.

    An architecture's latency is then predicted as the sum of its blocks plus the fixed
    costs (stem, head, one runtime call): `--latency lut` in searches.

    \b
    Examples:
      hwnas devices lut --device cpu --space mobilenet
      hwnas devices lut --device ort-cpu --space mobilenet --space-option width_mult=0.5 \\
          --repeats 50
    """
    from hwnas.devices import load_device
    from hwnas.profilers.lut import LatencyTable, table_path
    from hwnas.profilers.lut_scale import CALIBRATION_NETWORKS

    with user_errors():
        profile = load_device(device)
        search_space = _space(space, space_option)
        shape = _shape(input_shape) or tuple(search_space.input_shape)
        path = table_path(profile, search_space, num_classes=num_classes, input_shape=shape)
        cached = path.is_file() and not rebuild
        if cached:
            table = LatencyTable.load(path, space=search_space)
        else:
            with _progress(progress) as callback:
                table = LatencyTable.build(
                    search_space,
                    profile,
                    num_classes=num_classes,
                    input_shape=shape,
                    repeats=repeats,
                    seed=seed,
                    progress=callback,
                    calibrate=CALIBRATION_NETWORKS,
                )
            table.save(path)
        if out is not None:
            table.save(out)
            table.meta["path"] = str(path)
    _print_table(table, path, cached, out)


def _print_table(table: Any, path: Path, cached: bool, out: Path | None) -> None:
    from rich.table import Table

    from hwnas.console import make_console

    console = make_console()
    meta = table.meta
    state = "cached" if cached else f"measured in {meta.get('build_seconds', 0):.1f} s"
    console.print(
        f"latency table for device '{meta.get('device')}' (fingerprint "
        f"{meta.get('fingerprint')}): {len(table.entries)} entries, {state}"
    )
    plan = table.plan
    fixed = Table("fixed cost", "ms", title=f"fixed costs: {table.fixed_ms:.4g} ms per inference")
    fixed.add_row(plan.stem_key, f"{table.entry(plan.stem_key).ms:.4g}")
    fixed.add_row(plan.head_key, f"{table.entry(plan.head_key).ms:.4g}")
    if "overhead" in table.entries:
        fixed.add_row("runtime call", f"{table.entries['overhead'].ms:.4g}")
    console.print(fixed)
    slots = Table("slot", "shape", "fastest (ms)", "slowest (ms)", title="blocks per slot")
    for slot in table.space.slot_specs():
        values = dict(zip(slot.choices, table.slot_ms(slot)))
        fast = min(values, key=values.__getitem__)
        slow = max(values, key=values.__getitem__)
        hw = plan.slot_hw[slot.index]
        slots.add_row(
            str(slot.index),
            f"{slot.in_channels}>{slot.out_channels} s{slot.stride} {hw[0]}x{hw[1]}",
            f"{fast} {values[fast]:.4g}",
            f"{slow} {values[slow]:.4g}",
        )
    console.print(slots)
    fit = meta.get("calibration")
    if fit:
        console.print(
            f"entries scaled by {fit['scale']:.3f} to match {fit['networks']} whole networks "
            f"timed in the same session: table-sum MAPE {fit['mape_unscaled']:.1%} unscaled, "
            f"{fit['mape_leave_one_out']:.1%} scaled (leave-one-out)",
            soft_wrap=True,
        )
    unstable = meta.get("unstable_entries", 0)
    if unstable:
        console.print(
            f"warning: {unstable} entries had a spread above the profile's max_cv; the machine "
            "was busy: rebuild with --rebuild on a quiet machine or with more --repeats"
        )
    console.print(f"table: {path}" + (f" (copy: {out})" if out else ""))


@devices_app.command("calibrate")
def calibrate(
    device: Annotated[str, Opt(help=_DEVICE_HELP)] = "cpu",
    space: Annotated[str, Opt(help="Search space with per-layer blocks.")] = "mobilenet",
    samples: Annotated[int, Opt(help="Random architectures to measure end to end.")] = 200,
    space_option: Annotated[
        list[str] | None, Opt("--space-option", help=_SPACE_OPTION_HELP)
    ] = None,
    num_classes: Annotated[int, Opt(help="Classes of the head.")] = 10,
    input_shape: Annotated[str | None, Opt(help=_SHAPE_HELP)] = None,
    holdout: Annotated[float, Opt(help="Share of architectures held out for the fidelity.")] = 0.25,
    repeats: Annotated[int | None, Opt(help="Timed runs per architecture.")] = None,
    seed: Annotated[int, Opt(help="Seed of the architectures and the split.")] = 0,
    progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
    transfer_from: Annotated[
        list[Path] | None,
        Opt(
            "--transfer-from",
            help="Tables of other devices' latencies (columns *_ms; earlier calibrations' "
            "outputs too): predict every architecture of them from --samples measurements; "
            "repeatable.",
        ),
    ] = None,
    out: Annotated[
        Path | None, Opt(help="With --transfer-from: the predicted table (CSV) to write.")
    ] = None,
) -> None:
    """Fit a latency predictor on measured random architectures and report its fidelity.

    Builds the latency table first when it is not cached. The fidelity (share within +-10%
    and +-5%, MAPE, Kendall tau) is measured on held-out architectures, for the plain table
    sum and for the predictor; `--latency predictor` in searches uses it.

    With --transfer-from, a new device's latency is predicted for every architecture of
    benchmark tables from a few measurements, using the devices those tables know.

    \b
    Examples:
      hwnas devices calibrate --device cpu --space mobilenet --samples 200
      hwnas devices calibrate --device board.toml --space nb201 --samples 20 \\
          --transfer-from ../shared/data/nb201_cifar10_hw.csv --out nb201_board.csv
    """
    from hwnas.devices import load_device
    from hwnas.errors import ConfigError
    from hwnas.profilers.lut import LatencyTable, table_path
    from hwnas.profilers.lut_scale import CALIBRATION_NETWORKS
    from hwnas.profilers.predictor import calibrate as run_calibration

    if transfer_from:
        _calibrate_transfer(
            device, space, space_option, samples, num_classes, input_shape, repeats, seed,
            list(transfer_from), out, progress,
        )  # fmt: skip
        return
    with user_errors():
        if samples < 10:
            raise ConfigError(f"--samples must be at least 10, not {samples}")
        if not 0 < holdout < 1:
            raise ConfigError(f"--holdout must be between 0 and 1, not {holdout}")
        profile = load_device(device)
        search_space = _space(space, space_option)
        shape = _shape(input_shape) or tuple(search_space.input_shape)
        lookup = {"num_classes": num_classes, "input_shape": shape}
        path = table_path(profile, search_space, **lookup)
        with _progress(progress) as callback:
            if path.is_file():
                table = LatencyTable.load(path, space=search_space)
            else:
                typer.echo(
                    f"no latency table for '{profile.name}' yet: measuring it first", err=True
                )
                table = LatencyTable.build(
                    search_space,
                    profile,
                    **lookup,
                    repeats=repeats,
                    seed=seed,
                    progress=callback,
                    calibrate=CALIBRATION_NETWORKS,
                )
                table.save(path)
            predictor = run_calibration(
                table,
                profile,
                samples=samples,
                holdout=holdout,
                repeats=repeats,
                seed=seed,
                progress=callback,
            )
        table.save(path)  # now with the table sum's measured error
        out = predictor.save(table_path(profile, search_space, **lookup, kind="predictor"))
    _print_fidelity(predictor, out)


def _calibrate_transfer(
    device: str,
    space: str,
    space_option: list[str] | None,
    samples: int,
    num_classes: int,
    input_shape: str | None,
    repeats: int | None,
    seed: int,
    sources: list[Path],
    out: Path | None,
    progress: bool,
) -> None:
    from hwnas.devices import load_device
    from hwnas.errors import ConfigError
    from hwnas.profilers.transfer import calibrate_transfer

    with user_errors():
        if samples < 5:
            raise ConfigError(f"--samples must be at least 5 with --transfer-from, not {samples}")
        profile = load_device(device)
        search_space = _space(space, space_option)
        with _progress(progress) as callback:
            predictor, path = calibrate_transfer(
                profile,
                search_space,
                sources,
                samples=samples,
                num_classes=num_classes,
                input_shape=_shape(input_shape),
                repeats=repeats,
                seed=seed,
                out=out,
                progress=callback,
            )
    from hwnas.cli.transfer import print_transfer

    print_transfer(predictor, profile, path)


def _print_fidelity(predictor: Any, path: Path) -> None:
    from rich.table import Table

    from hwnas.console import make_console

    console = make_console()
    report, meta = predictor.report, predictor.meta
    title = (
        f"fidelity on {report['n_test']} held-out architectures "
        f"(fitted on {report['n_train']}; model {report['model']})"
    )
    table = Table("predictor", "within ±10%", "within ±5%", "MAPE", "Kendall tau", title=title)
    for name, key in (("latency table sum", "lut"), ("learned predictor", "predictor")):
        f = report.get(key)
        if f:
            table.add_row(
                name,
                f"{f['within_10']:.1%}",
                f"{f['within_5']:.1%}",
                f"{f['mape']:.2%}",
                f"{f['kendall_tau']:.3f}" if not math.isnan(f["kendall_tau"]) else "-",
            )
    console.print(table)
    console.print(
        f"measured in {meta.get('measure_seconds', 0):.1f} s; median robust CV of the "
        f"measurements {meta.get('median_rcv', float('nan')):.1%}"
    )
    unstable = meta.get("unstable_measurements", 0)
    if unstable:
        console.print(
            f"warning: {unstable} measurements had a spread above the profile's max_cv; the "
            "machine was busy and the fidelity is pessimistic"
        )
    console.print(f"predictor: {path}")
