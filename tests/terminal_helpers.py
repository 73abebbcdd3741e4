"""Running a command on a real pseudo-terminal of a given width (tests of terminal output)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env["TERM"] = "xterm"
    return env


def in_pty(args: list[str], columns: int, cwd: Path) -> str:
    """Run ``args`` with stdout and stderr on a pseudo-terminal ``columns`` wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = _env()
    proc = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=slave, env=env, cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0, b"".join(chunks)[-2000:]
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")
