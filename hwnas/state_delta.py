"""Strategy state as parts, so that saving it writes what changed, not the whole state.

A strategy's ``state_dict`` is saved after every ask and every tell. Written whole, a state that
holds every observation makes the bytes written grow with the square of the run's length. Here
the state is flattened into parts, one per entry of its nested dictionaries (path -> value); a
part is written again only when it changed, and a list that only grew is written as its new
tail (a further chunk of the same part). Parts that disappear are deleted, and a part that
changed in any other way replaces all of its chunks, so the stored parts never hold more than
one state's worth of data. Loading joins the chunks and rebuilds exactly the state saved last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str, ...]


# Parts are the state's entries and their entries (e.g. one per evaluated architecture);
# splitting deeper would only multiply small parts and the time spent on them.
MAX_DEPTH = 2


def flatten(state: dict[str, Any]) -> dict[Path, str]:
    """JSON text of the parts of nested dictionaries (down to :data:`MAX_DEPTH` keys), by path
    (keys as JSON writes them); an empty dictionary is a part."""
    out: dict[Path, str] = {}

    def walk(prefix: Path, value: Any) -> None:
        if isinstance(value, dict) and value and len(prefix) < MAX_DEPTH:
            for key, item in value.items():
                walk((*prefix, key if isinstance(key, str) else json.dumps(key)), item)
        else:
            out[prefix] = json.dumps(value)

    walk((), state)
    return out


def unflatten(parts: dict[Path, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, value in parts.items():
        if not path:
            return value  # the whole state is one leaf (an empty dictionary)
        node = root
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return root


@dataclass
class Changes:
    """What to write: delete these parts' chunks, then append these (path, JSON text) chunks."""

    delete: list[Path] = field(default_factory=list)
    append: list[tuple[Path, str]] = field(default_factory=list)

    def chunks(self) -> Iterator[tuple[str, str]]:
        for path, text in self.append:
            yield encode_path(path), text


def diff(old: dict[Path, str], new: dict[Path, str]) -> Changes:
    """The changes that turn the stored parts ``old`` into ``new`` (both from :func:`flatten`).

    A JSON array that only grew has the old text, less its closing bracket, then ``", "``
    before its new items (JSON values delimit themselves), so its new items are written alone.
    """
    changes = Changes()
    for path in old.keys() - new.keys():
        changes.delete.append(path)
    for path, text in new.items():
        before = old.get(path)
        if before == text:
            continue
        if before is None:
            changes.append.append((path, text))
        elif before == "[]" and text.startswith("["):
            changes.append.append((path, text))  # a new first chunk after the empty one
        elif before.startswith("[") and text.startswith(before[:-1] + ", "):
            changes.append.append((path, "[" + text[len(before) + 1 :]))
        else:
            changes.delete.append(path)
            changes.append.append((path, text))
    return changes


def join(rows: list[tuple[str, str]]) -> dict[Path, Any]:
    """Parts from (path, chunk) rows in chunk order: later chunks extend the first (a list)."""
    parts: dict[Path, Any] = {}
    for path_text, chunk in rows:
        path, value = decode_path(path_text), json.loads(chunk)
        if path in parts:
            parts[path].extend(value)
        else:
            parts[path] = value
    return parts


def texts(parts: dict[Path, Any]) -> dict[Path, str]:
    """The JSON text of each joined part, as :func:`flatten` writes it."""
    return {path: json.dumps(value) for path, value in parts.items()}


def encode_path(path: Path) -> str:
    return json.dumps(list(path))


def decode_path(text: str) -> Path:
    return tuple(json.loads(text))
