"""The ``hwnas`` command line: parses, calls the library, prints. No logic of its own.

Each module registers its commands on :data:`app`; importing this package registers them all.
"""

from hwnas.cli import devices as _devices  # noqa: F401 - devices, profile
from hwnas.cli import lineage as _lineage  # noqa: F401 - lineage
from hwnas.cli import outputs as _outputs  # noqa: F401 - export, plot, report, lineage
from hwnas.cli import run as _run  # noqa: F401 - search, resume, front, spaces, strategies
from hwnas.cli import surrogate as _surrogate  # noqa: F401 - surrogate fit
from hwnas.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
