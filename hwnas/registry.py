"""A small registry of named factories (spaces, strategies, devices ...).

Entries are registered lazily as ``"module:attribute"`` so that listing or looking up a name
never imports torch; the object is imported on first use.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hwnas.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:attribute"
    summary: str


class Registry(Generic[T]):
    """Maps names to lazily imported objects of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str, summary: str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = Entry(name, target, summary)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(self.unknown_message(name))
        module_name, _, attribute = entry.target.partition(":")
        obj: Any = getattr(importlib.import_module(module_name), attribute)
        return obj

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown {self.kind} '{name}'{hint}; choose one of: {', '.join(self.names())}"
