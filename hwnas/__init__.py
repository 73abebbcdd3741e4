"""hwnas: multi-objective, hardware-aware neural architecture search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["HwnasError", "__version__", "resume", "search"]

from hwnas.errors import HwnasError

if TYPE_CHECKING:
    from hwnas.api import SearchResult


def search(**kwargs: Any) -> SearchResult:
    """Run a search; see :func:`hwnas.api.search` for the keyword arguments."""
    from hwnas.api import search as _search

    return _search(**kwargs)


def resume(run_dir: Any, **kwargs: Any) -> SearchResult:
    """Continue a run; see :func:`hwnas.api.resume` for the keyword arguments."""
    from hwnas.api import resume as _resume

    return _resume(run_dir, **kwargs)


def __getattr__(name: str) -> Any:
    """``hwnas.api`` after a bare ``import hwnas``, loaded on first use (it imports torch)."""
    if name == "api":
        import importlib

        return importlib.import_module("hwnas.api")
    raise AttributeError(f"module 'hwnas' has no attribute {name!r}")
