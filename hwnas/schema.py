"""Validating settings read from files and flags with pydantic, with one-line errors.

Every schema error reads the same way: ``WHERE: field 'NAME' <what pydantic says>, got VALUE
(HINT)``, raised as the caller's ``HwnasError`` subclass, so the CLI prints it in one line and
exits 2. Unknown fields get a "did you mean" from the field names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hwnas.errors import HwnasError

M = TypeVar("M", bound=BaseModel)


def validate(
    model: type[M],
    data: Mapping[str, Any],
    *,
    where: str,
    error: type[HwnasError],
    hints: Mapping[str, str] | None = None,
) -> M:
    """``model`` built from ``data``; ``error`` with one line naming the first bad field."""
    check_known(data, model.model_fields, where=where, error=error)
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).replace("Input should", "must", 1)
        message = message[0].lower() + message[1:]
        if first["type"] == "missing" and len(first["loc"]) > 1:
            message = f"has too few items (no item {first['loc'][1]})"
        hint = (hints or {}).get(field)
        got = first.get("input")
        shown = f", got {got!r}" if first["type"] != "missing" else ""
        raise error(
            f"{where}: field '{field}' {message}{shown}" + (f" ({hint})" if hint else "")
        ) from None


def check_known(
    data: Mapping[str, Any], known: Iterable[str], *, where: str, error: type[HwnasError]
) -> None:
    """``error`` for the first key of ``data`` not in ``known``, with the closest name."""
    names = sorted(known)
    unknown = sorted(set(data) - set(names))
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise error(
            f"{where}: field '{unknown[0]}' is unknown{hint}; known fields: {', '.join(names)}"
        )
