"""hwnas: multi-objective, hardware-aware neural architecture search.

``hwnas.run_search(...)`` and ``hwnas.resume(...)`` are the Python API (:mod:`hwnas.api`);
``hwnas.search`` is the package of search strategies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hwnas._version import __version__
from hwnas.errors import HwnasError

__all__ = ["HwnasError", "__version__", "resume", "run_search"]

if TYPE_CHECKING:
    from hwnas.results import SearchResult


def run_search(**kwargs: Any) -> SearchResult:
    """Run a search; see :func:`hwnas.api.search` for the keyword arguments."""
    from hwnas.api import search

    return search(**kwargs)


def resume(run_dir: Any, **kwargs: Any) -> SearchResult:
    """Continue a run; see :func:`hwnas.api.resume` for the keyword arguments."""
    from hwnas.api import resume as _resume

    return _resume(run_dir, **kwargs)


def __getattr__(name: str) -> Any:
    # ``import hwnas; hwnas.api`` works without importing torch-heavy modules at start-up.
    if name in {"api", "results", "config"}:
        return importlib.import_module(f"hwnas.{name}")
    raise AttributeError(f"module 'hwnas' has no attribute {name!r}")
