"""Writing files so that a reader (or a killed run) never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (UTF-8 text or bytes) to a hidden temporary file beside ``path``, then
    rename it over ``path``: the rename is atomic on POSIX and Windows."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)
    return path
