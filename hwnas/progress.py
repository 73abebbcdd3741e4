"""Progress of a search: a bar with an ETA in a terminal, plain lines anywhere else.

A search writing to a log file, nohup, CI or a batch scheduler has no terminal; it still
prints one line at every tenth of the budget (and at least every ``every_seconds``):
``progress 12/40 (30%): front 5, normalised hypervolume 0.8123, failed 0, elapsed 0:00:12,
ETA 0:00:28``. Lines go to stdout when stdout is not a terminal (``> log`` keeps them), the
bar goes to stderr when stderr is one.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Protocol, TextIO

from hwnas.console import is_terminal
from hwnas.objectives.pareto import HV_NAME

#: A plain progress line at least this often (seconds) when the budget is slow to fill.
EVERY_SECONDS = 60.0


def clock(seconds: float) -> str:
    """``H:MM:SS`` of a duration."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def eta(
    *, elapsed: float, done_here: int, remaining: int | None, time_left: float | None
) -> float | None:
    """Seconds to the end: the session's rate over the evaluations left, capped by the time
    budget; None when nothing is known yet."""
    estimates = []
    if remaining is not None and done_here > 0:
        estimates.append(elapsed / done_here * max(remaining, 0))
    if time_left is not None:
        estimates.append(max(time_left, 0.0))
    return min(estimates) if estimates else None


class FrontSummary(Protocol):
    """The run's front so far (the runner's FrontMonitor)."""

    front_size: int
    hypervolume: float

    def refresh(self, force: bool = False) -> None: ...


class SearchProgress:
    """What the runner reports to; ``enabled`` False prints nothing (the library default)."""

    def __init__(
        self,
        *,
        enabled: bool,
        total: int | None,
        done: int,
        monitor: FrontSummary,
        failed: int = 0,
        seconds: float | None = None,
        every_seconds: float = EVERY_SECONDS,
        lines: TextIO | None = None,
        bar: bool | None = None,
    ) -> None:
        self.total, self.seconds, self.every_seconds = total, seconds, every_seconds
        self._start_done = done
        self.monitor, self._failed = monitor, failed
        self._start = time.monotonic()
        self._last_line = self._start
        self._next_step = self._step_after(done)
        self._bar: Any = None
        self._lines: TextIO | None = None
        if not enabled:
            return
        if bar is None:
            bar = is_terminal(stderr=True)
        if lines is None and not is_terminal():
            lines = sys.stdout
        self._lines = lines
        if bar:
            self._bar = _rich_bar(total, done)

    def __enter__(self) -> SearchProgress:
        if self._bar is not None:
            self._bar[0].start()
        self._line(self._start_done, self._failed, force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar[0].stop()

    def update(self, done: int, failed: int) -> None:
        self.monitor.refresh()
        if self._bar is not None:
            progress, task = self._bar
            m = self.monitor
            progress.update(
                task, completed=done, front=m.front_size, hv=m.hypervolume, failed=failed
            )
        self._line(done, failed)

    def finish(self, done: int, failed: int) -> None:
        self.monitor.refresh(force=True)
        self.update(done, failed)
        self._line(done, failed, force=True, final=True)

    # -- plain lines -----------------------------------------------------------------------
    def _step_after(self, done: int) -> int | None:
        if not self.total:
            return None
        step = max(1, math.ceil(self.total / 10))
        return (done // step + 1) * step

    def _line(
        self,
        done: int,
        failed: int,
        *,
        force: bool = False,
        final: bool = False,
    ) -> None:
        if self._lines is None:
            return
        now = time.monotonic()
        due_step = self._next_step is not None and done >= self._next_step
        if not (force or due_step or now - self._last_line >= self.every_seconds):
            return
        if final and self._printed_done == done:
            return
        self._last_line = now
        self._next_step = self._step_after(done)
        self._printed_done = done
        self.monitor.refresh(force=True)  # a printed line shows the front as it is now
        self._lines.write(self.text(done, failed, now) + "\n")
        self._lines.flush()

    _printed_done: int | None = None

    def text(self, done: int, failed: int, now: float) -> str:
        elapsed = now - self._start
        if self.total:
            count = f"{done}/{self.total} ({done / self.total:.0%})"
            remaining: int | None = self.total - done
        else:
            count, remaining = f"{done} done", None
        time_left = None if self.seconds is None else self.seconds - elapsed
        left = eta(
            elapsed=elapsed,
            done_here=done - self._start_done,
            remaining=remaining,
            time_left=time_left,
        )
        return (
            f"progress {count}: front {self.monitor.front_size}, "
            f"{HV_NAME} {self.monitor.hypervolume:.4f}, "
            f"failed {failed}, elapsed {clock(elapsed)}, "
            f"ETA {clock(left) if left is not None else '?'}"
        )


def _rich_bar(total: int | None, done: int) -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "front {task.fields[front]}  " + HV_NAME + " {task.fields[hv]:.4f}  "
            "failed {task.fields[failed]}"
        ),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = progress.add_task("search", total=total, completed=done, front=0, hv=0.0, failed=0)
    return progress, task
