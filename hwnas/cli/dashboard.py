"""``hwnas dashboard``: watch searches in the browser while they run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.app import app, user_errors


@app.command()
def dashboard(
    run_dirs: Annotated[
        list[Path], typer.Argument(metavar="RUN_DIR...", help="Run directories to watch.")
    ],
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8765,
    host: Annotated[
        str, typer.Option(help="Address to listen on; other than loopback, anyone may look.")
    ] = "127.0.0.1",
    refresh: Annotated[float, typer.Option(help="Seconds between the page's updates.")] = 2.0,
    verbose: Annotated[bool, typer.Option(help="Log every request to stderr.")] = False,
) -> None:
    """Serve a live view of runs: trials, front, hypervolume, best model under a budget.

    The page updates itself while a search writes to the run (start it in another terminal,
    before or after). It only reads the runs and loads nothing from the internet. Ctrl-C stops
    the server.

    Examples:

    \b
      hwnas dashboard runs/nb201-fpga
      hwnas dashboard runs/a runs/b --port 9000
    """
    from hwnas.dashboard.server import serve

    with user_errors():
        server = serve(
            run_dirs, host=host, port=port, poll_ms=round(refresh * 1000), verbose=verbose
        )
    typer.echo(f"hwnas dashboard on {server.url} (Ctrl-C stops it)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("dashboard stopped", err=True)
    finally:
        server.server_close()
