"""Writing files so that a reader (or a killed run) never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path

from hwnas.errors import HwnasError
from hwnas.rundir import write_at


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (UTF-8 text or bytes) to a temporary file with a random name beside
    ``path``, then rename it over ``path`` (atomic on POSIX). The temporary is created with
    ``O_EXCL | O_NOFOLLOW``, and a symlink at ``path`` is replaced, never written through.
    Files inside a run directory go through :func:`hwnas.rundir.write_file` instead."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise HwnasError(f"cannot write in '{path.parent}': {exc.strerror}") from None
    try:
        write_at(fd, path.name, data, where=path.parent)
    finally:
        os.close(fd)
    return path
