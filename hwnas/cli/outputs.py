"""Commands that turn a run into deliverables: export, plot, report, lineage."""

from __future__ import annotations

from hwnas.cli.app import app  # noqa: F401 - commands register on it
