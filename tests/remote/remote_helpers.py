"""Real device servers on 127.0.0.1 for the remote tests: started, waited for and stopped.

A server listens on a free port of its own choosing (``--port 0``) and prints it on its first
line; the fixture reads that line, then waits until ``/v1/health`` answers.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hwnas.remote.client import BoardUnreachable, RemoteBoard

REPO = Path(__file__).resolve().parents[2]
MACRO_JSON = REPO.parent / "shared" / "data" / "nas-bench-macro_cifar10.json"


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    name: str

    def kill(self) -> None:
        """SIGKILL, as a board losing power would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        process.kill()
        raise RuntimeError(f"device server printed nothing in {timeout} s")
    return process.stdout.readline()


def start_server(
    *args: str,
    name: str = "board-a",
    token: str | None = None,
    python: str = sys.executable,
    pythonpath: Path = REPO,
) -> Server:
    """A device server run by ``python`` with ``pythonpath``; returns once it answers."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1"}
    env.pop("HWNAS_DEVICE_TOKEN", None)
    command = [python, "-m", "hwnas.remote", "--port", "0", "--name", name, *args]
    if token:
        command += ["--token", token]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    line = _first_line(process, timeout=120)
    if not line:
        raise RuntimeError(f"device server exited with {process.wait()}")
    port = int(line.split(" on 127.0.0.1:")[1].split(",")[0])
    server = Server(process, f"http://127.0.0.1:{port}", name)
    board = RemoteBoard(server.url, token=token, timeout=10)
    for _ in range(600):  # the port is bound already: this only waits for the first answer
        try:
            board.health(timeout=5)
            return server
        except BoardUnreachable:
            if process.poll() is not None:
                raise RuntimeError("device server died at start") from None
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("device server never answered /v1/health")


def remote_profile(
    directory: Path,
    urls: list[str],
    *,
    name: str = "board",
    repeats: int = 7,
    extra: str = "",
) -> Path:
    """A remote profile file for ``urls`` (few repeats: tests that need no precision)."""
    servers = ", ".join(f'"{u}"' for u in urls)
    path = directory / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\nruntime = "remote"\nservers = [{servers}]\nthreads = 1\n'
        f'warmup = 2\nrepeats = {repeats}\nclock = "thread"\ntimeout = 60\n{extra}'
    )
    return path
