"""DeviceGate: a real cross-process reader-writer lock (flock), with real processes."""

import fcntl
import multiprocessing as mp
import os
import signal
import time

import pytest

from hwnas.executors.gate import DeviceGate, physical_device, shared_gates

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock gates are POSIX only")


def _hold(directory: str, mode: str, seconds: float, started, acquired, released) -> None:
    gate = DeviceGate(resource="cpu", directory=directory)
    started.value = time.time()
    with gate.shared() if mode == "shared" else gate.exclusive():
        acquired.value = time.time()
        time.sleep(seconds)
        released.value = time.time()


class Holder:
    """A process that takes the gate ``mode`` and holds it ``seconds``; its times, shared."""

    def __init__(self, directory, mode: str, seconds: float) -> None:
        ctx = mp.get_context("spawn")
        self.started, self.acquired, self.released = (ctx.Value("d", 0.0) for _ in range(3))
        self.process = ctx.Process(
            target=_hold,
            args=(str(directory), mode, seconds, self.started, self.acquired, self.released),
        )
        self.process.start()

    def wait_until(self, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while getattr(self, what).value == 0.0:
            assert time.monotonic() < deadline, f"never {what}"
            time.sleep(0.01)

    def join(self) -> None:
        self.process.join(timeout=20)


def test_readers_share_and_a_writer_waits_for_them_and_keeps_new_readers_out(tmp_path):
    reader = Holder(tmp_path, "shared", 2.0)
    reader.wait_until("acquired")
    other_reader = Holder(tmp_path, "shared", 0.1)
    other_reader.wait_until("acquired")
    assert reader.released.value == 0.0, "two readers did not hold the gate at once"
    writer = Holder(tmp_path, "exclusive", 0.5)
    writer.wait_until("started")
    # Start the late reader only once the writer waits at the gate holding the turnstile
    # (nothing else can hold it now: the readers let go of it as soon as they got in).
    _wait_until_held(tmp_path / "cpu.turnstile.lock")
    late_reader = Holder(tmp_path, "shared", 0.1)
    for holder in (reader, other_reader, writer, late_reader):
        holder.join()
    # The writer waited for the running readers, and the late reader for the writer.
    assert writer.acquired.value >= reader.released.value
    assert late_reader.acquired.value >= writer.released.value


def test_a_killed_holder_releases_the_gate(tmp_path):
    writer = Holder(tmp_path, "exclusive", 60.0)
    writer.wait_until("acquired")
    os.kill(writer.process.pid, signal.SIGKILL)
    writer.join()
    # The kernel dropped the dead process's locks: both can be taken without waiting at all.
    for role in ("turnstile", "gate"):
        assert not _held(tmp_path / f"cpu.{role}.lock"), f"the dead holder still holds the {role}"
    gate = DeviceGate(resource="cpu", directory=tmp_path)
    with gate.exclusive(), shared_gates([], directory=tmp_path):
        pass


def _held(path) -> bool:
    """Whether another process holds ``path``'s flock (tried without blocking)."""
    with open(path, "ab") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def _wait_until_held(path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and _held(path)):
        assert time.monotonic() < deadline, f"nobody ever held {path.name}"
        time.sleep(0.01)


def test_physical_device_names_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert physical_device("cuda:1") == "cuda-1" and physical_device("cuda") == "cuda-3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert physical_device("cuda:2") == "cuda-2" and physical_device("cpu") == "cpu"
