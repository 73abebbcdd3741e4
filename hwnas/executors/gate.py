"""DeviceGate: a reader-writer lock per physical device, shared by every process on a machine.

Latency must never be measured on a device while something trains on it. Trainings hold the
gate *shared* (any number at once); a measurement holds it *exclusive*. The locks are
``flock(2)`` locks on small files in the machine's temporary directory, so they work across
unrelated processes (process-pool workers, Ray tasks and actors, even two hwnas runs), and the
kernel releases them when a holder dies, so a killed worker never leaves a device locked.

``flock`` alone prefers readers: with trainings overlapping back to back a measurement could
wait forever. A second lock, the turnstile, gives the writer priority: readers pass through it
on the way in, the writer holds it while it waits and measures, so no new training starts.
Trainings already running finish first; a measurement never interrupts one.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ModuleNotFoundError:  # pragma: no cover - Windows: no gate (documented)
    fcntl = None  # type: ignore[assignment]


def physical_device(resource: str) -> str:
    """A machine-wide name for ``resource`` ("cpu", "cuda:1" ...), e.g. ``cuda-GPU-1a2b``.

    ``cuda:N`` is relative to ``CUDA_VISIBLE_DEVICES`` (Ray sets it per task), so two
    processes that see different GPUs as ``cuda:0`` get different names.
    """
    kind, _, index = resource.partition(":")
    if kind == "cuda":
        number = int(index or 0)
        visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
        visible = [v for v in visible if v]
        name = visible[number] if number < len(visible) else str(number)
        return f"cuda-{name}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", resource)


def default_directory() -> Path:
    """``$HWNAS_GATE_DIR``, else one directory per user in the machine's temporary directory,
    so that every hwnas process of the user on this machine shares the same gates."""
    configured = os.environ.get("HWNAS_GATE_DIR")
    if configured:
        return Path(configured)
    user = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"hwnas-gates-{user}"


class DeviceGate:
    """The gate of one physical device (see the module docstring)."""

    def __init__(self, *, resource: str, directory: str | Path | None = None) -> None:
        self.resource = resource
        self.name = physical_device(resource)
        self.directory = Path(directory) if directory is not None else default_directory()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Held while training (or any phase-1 work) uses the device."""
        with self._open("turnstile") as turnstile, self._open("gate") as gate:
            _lock(turnstile, exclusive=True)
            _lock(gate, exclusive=False)
            _unlock(turnstile)
            try:
                yield
            finally:
                _unlock(gate)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while measuring: waits for running trainings, keeps new ones out."""
        with self._open("turnstile") as turnstile, self._open("gate") as gate:
            _lock(turnstile, exclusive=True)
            try:
                _lock(gate, exclusive=True)
                try:
                    yield
                finally:
                    _unlock(gate)
            finally:
                _unlock(turnstile)

    def _open(self, role: str) -> IO[bytes]:
        return os.fdopen(open_lock_file(self.directory, f"{self.name}.{role}.lock"), "ab")


def open_lock_file(directory: Path, name: str) -> int:
    """A descriptor of lock file ``name`` in ``directory``, safe in a shared temporary directory.

    The directory is created owner-only and must belong to this user and not be writable by
    others (another user could otherwise plant files in it); the lock file is opened with
    ``O_NOFOLLOW``, so a planted symlink is refused instead of appended to.
    """
    from hwnas.errors import DeviceError

    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=True)
    info = os.lstat(directory)
    uid = os.getuid() if hasattr(os, "getuid") else info.st_uid
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o022:
        raise DeviceError(
            f"device gate directory '{directory}' is not a directory of this user writable only "
            "by it; remove it or set HWNAS_GATE_DIR to a private directory"
        )
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(directory / name, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise DeviceError(
            f"cannot open device gate lock '{directory / name}' ({exc.strerror}); a symlink "
            "there is refused: remove it"
        ) from None


@contextlib.contextmanager
def shared_gates(resources: Iterable[str], directory: str | Path | None = None) -> Iterator[None]:
    """Hold the shared gate of every resource, in a fixed order (no lock-order deadlock)."""
    gates = {physical_device(r): DeviceGate(resource=r, directory=directory) for r in resources}
    with contextlib.ExitStack() as stack:
        for name in sorted(gates):
            stack.enter_context(gates[name].shared())
        yield


def _lock(handle: IO[bytes], *, exclusive: bool) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _unlock(handle: IO[bytes]) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
