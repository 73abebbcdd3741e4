"""The ``hwnas`` command line: parses, calls the library, prints. No logic of its own.

Each module registers its commands on :data:`app`; importing this package registers them all.
"""

from hwnas.cli import compare as _compare  # noqa: F401 - compare
from hwnas.cli import dashboard as _dashboard  # noqa: F401 - dashboard
from hwnas.cli import devices as _devices  # noqa: F401 - devices, lut, calibrate
from hwnas.cli import lineage as _lineage  # noqa: F401 - lineage
from hwnas.cli import outputs as _outputs  # noqa: F401 - export, plot, report, lineage
from hwnas.cli import profile as _profile  # noqa: F401 - profile
from hwnas.cli import remote as _remote  # noqa: F401 - device serve
from hwnas.cli import run as _run  # noqa: F401 - search, resume, front, spaces, strategies
from hwnas.cli import surrogate as _surrogate  # noqa: F401 - surrogate fit
from hwnas.cli.app import app, one_line

__all__ = ["app", "main", "run_cli"]


def main() -> None:
    import sys

    sys.exit(run_cli(sys.argv[1:]))


def run_cli(args: list[str]) -> int:
    """Run the app on ``args`` and return the exit status. A usage error (unknown option,
    ``--budget ten``) is one line and status 2, like every other bad input."""
    try:  # typer >= 0.25 vendors click
        from typer._click import exceptions as click_exceptions
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as click_exceptions
    import typer

    try:
        status = app(args=args, prog_name="hwnas", standalone_mode=False)
    except click_exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain `hwnas`: the help text
            typer.echo(exc.format_message(), err=True)
        else:
            message = one_line(exc.format_message())
            typer.echo(f"error: {message} (see `hwnas --help`)", err=True)
        return 2
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click_exceptions.ClickException as exc:
        typer.echo(f"error: {one_line(exc.format_message())}", err=True)
        return int(exc.exit_code)
    return status if isinstance(status, int) else 0
