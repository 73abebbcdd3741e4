"""``hwnas device serve``: the device server, run on the board (see :mod:`hwnas.remote`)."""

from __future__ import annotations

from typing import Annotated

import typer

from hwnas.cli.app import app

Opt = typer.Option

device_app = typer.Typer(name="device", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(device_app, help="Run on a target board: the device server.")


@device_app.command("serve")
def serve(
    port: Annotated[int, Opt(help="TCP port (0: any free one).")] = 8470,
    host: Annotated[
        str, Opt(help="Address to listen on; anything but loopback needs a token.")
    ] = "127.0.0.1",
    token: Annotated[
        str | None, Opt(help="Shared secret (default: $HWNAS_DEVICE_TOKEN).", show_default=False)
    ] = None,
    generate_token: Annotated[bool, Opt(help="Make up a token and print it.")] = False,
    name: Annotated[str | None, Opt(help="This board's name (default: the host name).")] = None,
    max_model_mb: Annotated[float, Opt(help="Largest model accepted (MiB).")] = 256.0,
    max_models: Annotated[int, Opt(help="Most models in one request.")] = 64,
    max_seconds: Annotated[float, Opt(help="Longest measurement of one request (s).")] = 300.0,
) -> None:
    """Measure ONNX models sent by an hwnas search on another machine (one at a time).

    Needs only numpy and onnxruntime on the board (`python -m hwnas.remote` is the same
    server without the command line's dependencies; see docs/remote.md).

    \b
    Examples:
      hwnas device serve --port 8470                      # loopback only, no token
      hwnas device serve --host 0.0.0.0 --port 8470 --generate-token
    """
    from hwnas.remote.server import main

    argv = ["--host", host, "--port", str(port), "--max-model-mb", str(max_model_mb)]
    argv += ["--max-models", str(max_models), "--max-seconds", str(max_seconds)]
    if token:
        argv += ["--token", token]
    if generate_token:
        argv.append("--generate-token")
    if name:
        argv += ["--name", name]
    code = main(argv)
    if code:
        raise typer.Exit(code)
