"""DeviceGate: a real cross-process reader-writer lock (flock), with real processes."""

import multiprocessing as mp
import os
import signal
import time

import pytest

from hwnas.gate import DeviceGate, physical_device, shared_gates

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
    time.sleep(0.2)  # the writer is now waiting at the gate, holding the turnstile
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
    gate = DeviceGate(resource="cpu", directory=tmp_path)
    start = time.monotonic()
    with gate.exclusive(), shared_gates([], directory=tmp_path):
        pass
    assert time.monotonic() - start < 5


def test_physical_device_names_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert physical_device("cuda:1") == "cuda-1" and physical_device("cuda") == "cuda-3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert physical_device("cuda:2") == "cuda-2" and physical_device("cpu") == "cpu"
