"""hwnas: multi-objective, hardware-aware neural architecture search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["HwnasError", "__version__", "search"]

from hwnas.errors import HwnasError

if TYPE_CHECKING:
    from hwnas.api import SearchResult


def search(**kwargs: Any) -> SearchResult:
    """Run a search; see :func:`hwnas.api.search` for the keyword arguments."""
    from hwnas.api import search as _search

    return _search(**kwargs)
