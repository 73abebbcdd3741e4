"""`hwnas profile`: every metric of one network on a device, with units and spread."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from hwnas.cli.app import app, user_errors
from hwnas.cli.devices import _DEVICE_HELP, _SPACE_OPTION_HELP, Opt, _shape


@app.command("profile")
def profile_command(
    model: Annotated[
        str,
        typer.Argument(
            help="torchvision:NAME, a genotype SPACE:SPEC, or the path of an .onnx file."
        ),
    ],
    device: Annotated[str, Opt(help=_DEVICE_HELP)] = "cpu",
    as_json: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False,
    metric: Annotated[
        list[str] | None, Opt("--metric", "-m", help="Only this metric; repeatable.")
    ] = None,
    input_shape: Annotated[
        str | None,
        Opt(help="Input shape C,H,W (default: the profile's, the space's or 3,224,224)."),
    ] = None,
    num_classes: Annotated[int | None, Opt(help="Classes of the classifier.")] = None,
    space_option: Annotated[
        list[str] | None, Opt("--space-option", help=_SPACE_OPTION_HELP)
    ] = None,
    repeats: Annotated[int | None, Opt(help="Timed runs (default: the profile's).")] = None,
    macs_backend: Annotated[str, Opt(help="MAC counter: torch (default) or fvcore.")] = "torch",
) -> None:
    """Measure a model on a device: latency, MACs, parameters, sizes, peak memory, energy.

    \b
    Examples:
      hwnas profile torchvision:resnet18 --device cpu
      hwnas profile macro:02012100 --device ort-cpu --json
      G=ir_k3_e1-ir_k3_e6-skip-ir_k5_e3-skip-ir_k3_e3-skip-ir_k5_e6-ir_k3_e1-ir_k3_e3
      hwnas profile mobilenet:$G --device cpu --json
      hwnas profile model.onnx --device ort-cpu
    """
    from hwnas.devices import load_device
    from hwnas.profilers.profile import profile_model, resolve_model
    from hwnas.spaces import parse_options

    with user_errors():
        profile = load_device(device)
        ref = resolve_model(
            model,
            num_classes=num_classes,
            input_shape=_shape(input_shape),
            space_options=parse_options(space_option or []),
            default_shape=profile.input_shape or (3, 224, 224),
        )
        import warnings

        with warnings.catch_warnings(record=True):
            warnings.simplefilter("ignore")  # the spread warning is printed below instead
            results = profile_model(
                ref, profile, metrics=metric, macs_backend=macs_backend, repeats=repeats
            )
    if as_json:
        data = {
            "model": ref.label,
            "device": profile.to_json(),
            "measurements": {k: m.to_json() for k, m in results.items()},
        }
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    _print_profile(ref, profile, results)


_NOTES = {
    "macs": lambda m: f"conv + matmul MACs per image ({m.env.get('backend')} backend)",
    "params": lambda m: "all parameters (BatchNorm affine included)",
    "size": lambda m: "fp32 weights",
    "onnx_size": lambda m: "exported ONNX file",
    "peak_memory": lambda m: f"{m.env.get('method')}; weights {_bytes(m.env.get('weights'))}",
    "latency": lambda m: f"{m.env.get('timer', '')}, per batch of {m.env.get('batch_size')}",
    "energy": lambda m: f"{m.env.get('method')}, per batch",
}


def _bytes(value: Any) -> str:
    if value is None:
        return "?"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.4g} {unit}"
        value /= 1024
    return f"{value} B"


def _print_profile(ref: Any, profile: Any, results: dict[str, Any]) -> None:
    from rich.table import Table

    from hwnas.console import make_console

    console = make_console()
    table = Table(
        "metric",
        "value",
        "unit",
        "spread (p10–p90, robust CV, n)",
        "notes",
        title=f"{ref.label} on {profile.label}",
    )
    for name, m in results.items():
        value = _bytes(m.value) if m.unit == "B" else f"{m.value:,.6g}"
        unit = "" if m.unit == "B" else m.unit
        spread = ""
        if "p10" in m.stats:
            spread = (
                f"{m.stats['p10']:.4g}–{m.stats['p90']:.4g}, {m.stats['rcv']:.1%}, "
                f"n={int(m.stats['n'])}"
            )
        note = _NOTES.get(name, lambda _m: "")(m)
        table.add_row(name, value, unit, spread, note)
    console.print(table)
    env = next((m.env for m in results.values() if "fingerprint" in m.env), {})
    if env:
        hw = env.get("cpu") or f"{env.get('gpu')} (driver {env.get('driver')})"
        if "board" in env:  # a remote device: which board measured it
            hw = f"board '{env['board']}' at {env.get('server')}: {hw}"
        versions = ", ".join(
            f"{k} {env[k]}" for k in ("torch", "onnxruntime", "python") if k in env
        )
        console.print(
            f"{hw}; {versions}; {env.get('threads')} thread(s), batch {env.get('batch_size')}, "
            f"input {env.get('input_shape')}; fingerprint {env.get('fingerprint')}"
        )
    for m in results.values():
        if "warning" in m.env:
            console.print(f"warning: {m.metric}: {m.env['warning']}")
