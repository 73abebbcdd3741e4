"""The ``hwnas`` command line: parses, calls the library, prints. No logic of its own.

Each module registers its commands on :data:`app`; importing this package registers them all.
"""

from hwnas.cli import run as _run  # noqa: F401 - registers search, resume, front, spaces ...
from hwnas.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
