"""Every path inside a run directory, and the one way to write there.

A run directory may come from someone else (copied, shared, unpacked), so nothing in it is
trusted: a write never follows a symlink, never leaves the directory, and never uses a
predictable temporary name. Each directory on the way to a file is opened with
``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor (``openat``), the data goes
to a fresh ``O_EXCL | O_NOFOLLOW`` temporary file with a random name in the target directory,
and a ``rename`` relative to the same descriptor puts it in place (replacing a planted symlink
rather than writing through it). Related files are written as a unit (:func:`write_unit`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from hwnas.errors import RunError

DB = "hwnas.db"
LOCK = "hwnas.lock"
CONFIG = "config.toml"
FRONT_CSV = "front.csv"
FRONT_JSON = "front.json"
REPORT = "report.html"
WEIGHTS = "weights"
EXPORTS = "exports"
PLOTS = "plots"
STRATEGY = "strategy"
#: Temporary files start with this; stale ones (a killed write) are removed by the next write
#: into the same directory through :func:`remove_stale`.
TMP_PREFIX = ".hwnas-tmp-"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def weights_file(trial: int) -> str:
    """The relative path of a trial's trained weights."""
    return f"{WEIGHTS}/trial-{trial:05d}.safetensors"


def db_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / DB


def is_run(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds a run database (a regular file, not a symlink)."""
    try:
        return stat.S_ISREG(os.lstat(db_path(run_dir)).st_mode)
    except OSError:
        return False


def _parts(relative: str | os.PathLike[str]) -> list[str]:
    parts = PurePosixPath(os.fspath(relative)).parts
    if not parts or parts[0] == "/" or any(p in ("..", ".", "") for p in parts):
        raise RunError(f"'{relative}' is not a path inside the run directory")
    return list(parts)


@contextlib.contextmanager
def open_dir(
    run_dir: str | os.PathLike[str], relative: str | os.PathLike[str] = ".", *, create: bool = True
) -> Iterator[int]:
    """A descriptor of ``run_dir/relative``, every step opened without following symlinks.

    ``run_dir`` itself is the user's choice and may be reached through a symlink; inside it, a
    symlink or a non-directory on the way is a :class:`RunError`.
    """
    root = Path(run_dir)
    try:
        fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except OSError as exc:
        raise RunError(f"cannot open run directory '{root}': {exc.strerror}") from None
    try:
        walked = root
        for part in [] if os.fspath(relative) in (".", "") else _parts(relative):
            walked = walked / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as exc:
                raise _refused(walked, exc) from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _refused(path: Path, exc: OSError) -> RunError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return RunError(
            f"'{path}' is a symlink or not a directory; hwnas writes only inside the run "
            "directory: remove or rename it"
        )
    if exc.errno == errno.ENOENT:
        return RunError(f"'{path}' does not exist")
    return RunError(f"cannot use '{path}': {exc.strerror}")


def write_at(fd: int, name: str, data: str | bytes, *, where: Path) -> None:
    """Write ``name`` in the directory ``fd`` atomically (random temporary, then rename)."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    tmp = _temporary(fd, name, payload, where=where)
    _commit(fd, tmp, name, where=where)


def _temporary(fd: int, name: str, payload: bytes, *, where: Path) -> str:
    tmp = f"{TMP_PREFIX}{secrets.token_hex(8)}-{name}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    try:
        out = os.open(tmp, flags, 0o644, dir_fd=fd)
    except OSError as exc:
        raise RunError(f"cannot write in '{where}': {exc.strerror}") from None
    try:
        with os.fdopen(out, "wb") as handle:
            handle.write(payload)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=fd)
        raise
    return tmp


def _commit(fd: int, tmp: str, name: str, *, where: Path) -> None:
    try:
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=fd)
        kind = "a directory" if exc.errno in (errno.EISDIR, errno.ENOTEMPTY) else exc.strerror
        raise RunError(f"cannot write '{where / name}' ({kind}); remove it and retry") from None


def write_file(
    run_dir: str | os.PathLike[str], relative: str | os.PathLike[str], data: str | bytes
) -> Path:
    """Write ``run_dir/relative`` atomically without following a symlink or leaving the run."""
    *dirs, name = _parts(relative)
    sub = "/".join(dirs) or "."
    with open_dir(run_dir, sub) as fd:
        write_at(fd, name, data, where=Path(run_dir) / sub)
    return Path(run_dir) / relative


def write_unit(
    run_dir: str | os.PathLike[str],
    directory: str,
    files: Mapping[str, str | bytes | None],
    *,
    commit: str,
) -> None:
    """Write related files in ``run_dir/directory`` as a unit.

    ``commit`` names the record that makes the unit visible (an export's JSON): it is removed
    first and written last, so after a kill at any moment a reader either sees the old unit,
    no unit, or the new one complete, never a record describing other files. A value of None
    removes that file. Stale temporaries of earlier killed writes are removed first.
    """
    with open_dir(run_dir, directory) as fd:
        where = Path(run_dir) / directory
        remove_stale(fd)
        temps = {
            name: _temporary(fd, name, _bytes(data), where=where)
            for name, data in files.items()
            if data is not None and name != commit
        }
        with contextlib.suppress(FileNotFoundError):
            os.unlink(commit, dir_fd=fd)
        for name, data in files.items():
            if data is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
            elif name != commit:
                _commit(fd, temps[name], name, where=where)
        record = files.get(commit)
        if record is not None:
            write_at(fd, commit, record, where=where)


def _bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def remove_stale(fd: int) -> None:
    """Remove temporary files and directories that killed writes left in directory ``fd``."""
    for entry in os.listdir(fd):
        if not entry.startswith((TMP_PREFIX, ".tmp-")):
            continue
        try:
            mode = os.lstat(entry, dir_fd=fd).st_mode
            if stat.S_ISDIR(mode):
                _remove_tree(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
        except OSError:
            continue  # another process's live temporary, or already gone


def _remove_tree(parent: int, name: str) -> None:
    fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent)
    try:
        for entry in os.listdir(fd):
            if stat.S_ISDIR(os.lstat(entry, dir_fd=fd).st_mode):
                _remove_tree(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def read_text(run_dir: str | os.PathLike[str], relative: str) -> str | None:
    """The text of a regular file in the run (None when absent); never follows a symlink."""
    *dirs, name = _parts(relative)
    try:
        with open_dir(run_dir, "/".join(dirs) or ".", create=False) as fd:
            out = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
    except RunError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise _refused(Path(run_dir) / relative, exc) from None
    with os.fdopen(out, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise RunError(f"'{Path(run_dir) / relative}' is not a regular file; remove it")
        raw = handle.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RunError(
            f"'{Path(run_dir) / relative}' is not UTF-8 text; the run directory is damaged"
        ) from None


def open_lock(run_dir: str | os.PathLike[str]) -> int:
    """A read-write descriptor of the run's lock file, created if needed, never a symlink."""
    with open_dir(run_dir, create=False) as fd:
        flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC
        try:
            out = os.open(LOCK, flags, 0o644, dir_fd=fd)
        except OSError as exc:
            raise _refused(Path(run_dir) / LOCK, exc) from None
    if not stat.S_ISREG(os.fstat(out).st_mode):
        os.close(out)
        raise RunError(f"'{Path(run_dir) / LOCK}' is not a regular file; remove it")
    return out


def check_regular(path: Path) -> None:
    """RunError unless ``path`` is absent or a regular file (not a symlink): for files another
    library opens by name (SQLite's database, journal and WAL files)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise RunError(
            f"'{path}' is a symlink or not a regular file; a run directory holds only its own "
            "files: remove it"
        )
