"""The typer application, the version flag and the one-line error handling shared by commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer

from hwnas._version import __version__
from hwnas.errors import HwnasError

app = typer.Typer(
    name="hwnas",
    help="Multi-objective, hardware-aware neural architecture search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print errors the user can fix as one line and exit 2; interrupted runs exit 130."""
    try:
        yield
    except HwnasError as exc:
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo(
            "interrupted; the run is saved and `hwnas resume RUN_DIR` continues it", err=True
        )
        raise typer.Exit(130) from None


def one_line(text: str) -> str:
    """``text`` on one printable line: input echoed in a message (a genotype, a file name) may
    hold control characters or line breaks of its own; they are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.strip())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hwnas {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Multi-objective, hardware-aware neural architecture search."""
