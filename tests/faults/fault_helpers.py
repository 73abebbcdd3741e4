"""Helpers of the fault-injection tests: the CLI run in-process, snapshots of directories."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from hwnas.cli import run_cli

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MACRO_JSON = SHARED_DATA / "nas-bench-macro_cifar10.json"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def one_error_line(self, *, code: int = 2) -> str:
        """The single ``error: ...`` line; fails on a traceback, several lines or another
        exit status."""
        assert "Traceback" not in self.out + self.err, self.err
        assert self.code == code, (self.code, self.out[-500:], self.err)
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        return lines[0]


def cli(*args: object) -> CliResult:
    """``hwnas ARGS`` in this process, as the console script runs it (exit status returned;
    an exception that is not a user error propagates and fails the test)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli([str(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


def snapshot(root: Path, *, ignore: tuple[str, ...] = ()) -> dict[str, object]:
    """Every entry under ``root`` (symlinks not followed): bytes, link targets, directories."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if name in ignore:
                continue
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = path.read_bytes()
    return found
