"""A pool of boards of one kind: batches spread over them, dead boards' work moved elsewhere.

A batch of models is cut into chunks, one per live board (smaller when a board's limits say
so); each board measures its chunks one at a time, interleaved (drift-fair within a chunk).
A board that does not answer, or drops the connection mid-measurement, is set aside for
``retry_dead_s`` and its chunk goes to another board; when no board is left the batch fails
with every board's reason. A busy board (another worker or host measuring) is tried again
after a short, growing wait. Several processes may share a pool's boards: the server's own
lock keeps one measurement per board.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from hwnas.errors import DeviceError
from hwnas.remote.client import BoardBusy, BoardRejected, BoardUnreachable, RemoteBoard

__all__ = ["BoardPool", "ChunkResult"]


@dataclass(frozen=True)
class ChunkResult:
    """What one board measured: model indices, their results, the board's env and URL."""

    indices: tuple[int, ...]
    results: tuple[dict[str, Any], ...]
    env: Mapping[str, Any]
    url: str


class BoardPool:
    """Boards at ``urls`` sharing ``token``; ``name`` (the device) appears in messages."""

    def __init__(
        self,
        *,
        urls: Sequence[str],
        token: str | None,
        name: str,
        timeout: float = 300.0,
        retry_dead_s: float = 30.0,
    ) -> None:
        if not urls:
            raise DeviceError(f"device '{name}' lists no servers")
        self.boards = [RemoteBoard(u, token=token, timeout=timeout) for u in urls]
        self.name = name
        self.timeout = timeout
        self.retry_dead_s = retry_dead_s
        self._dead: dict[str, tuple[float, str]] = {}  # url -> (since, reason)
        self._infos: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._next = 0  # the board the next batch tries first: single models take turns

    # -- boards -----------------------------------------------------------------------------
    def probe(self) -> dict[str, dict[str, Any]]:
        """Info of every reachable board (token checked); DeviceError when none answers or
        a board rejects the token."""
        reasons = []
        for board in self.boards:
            try:
                info = board.info()
            except BoardUnreachable as exc:
                self._mark_dead(board.url, str(exc))
                reasons.append(str(exc))
                continue
            with self._lock:
                self._infos[board.url] = info
                self._dead.pop(board.url, None)
        if not self._infos:
            raise DeviceError(
                f"no server of device '{self.name}' is reachable ({'; '.join(reasons)}); start "
                "one on the board with `hwnas device serve` and check the address"
            )
        return dict(self._infos)

    def infos(self) -> dict[str, dict[str, Any]]:
        """Board info by URL, probing once."""
        if not self._infos:
            self.probe()
        return dict(self._infos)

    def _mark_dead(self, url: str, reason: str) -> None:
        with self._lock:
            self._dead[url] = (time.monotonic(), reason)

    def _alive(self, board: RemoteBoard) -> bool:
        dead = self._dead.get(board.url)
        if dead is None:
            return True
        if time.monotonic() - dead[0] < self.retry_dead_s:
            return False
        try:  # set aside long enough: is it back?
            board.health()
            board.info()
        except (BoardUnreachable, BoardBusy):
            self._mark_dead(board.url, dead[1])
            return False
        with self._lock:
            self._dead.pop(board.url, None)
        return True

    def _limits(self, url: str) -> Mapping[str, Any]:
        return self._infos.get(url, {}).get("limits", {})

    # -- measuring --------------------------------------------------------------------------
    def _chunks(self, models: Sequence[bytes], boards: int) -> list[list[int]]:
        """Model indices cut into about one chunk per board, within every board's limits."""
        limits = [self._limits(b.url) for b in self.boards if b.url in self._infos]
        max_models = min((int(lim.get("max_models", 64)) for lim in limits), default=64)
        max_bytes = min((int(lim.get("max_model_bytes", 2**62)) for lim in limits), default=2**62)
        for i, m in enumerate(models):
            if len(m) > max_bytes:
                raise BoardRejected(
                    f"model {i} has {len(m)} bytes, more than the servers of device "
                    f"'{self.name}' accept ({max_bytes}); start them with a larger --max-model-mb"
                )
        size = max(1, min(math.ceil(len(models) / max(boards, 1)), max_models))
        order = list(range(len(models)))
        return [order[i : i + size] for i in range(0, len(order), size)]

    def measure(
        self,
        models: Sequence[bytes],
        settings: Mapping[str, Any],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[ChunkResult]:
        """Every model measured once on some board; results in chunks (the board's env
        and URL with each). DeviceError when no board can measure or the request is wrong."""
        self.infos()
        live = [b for b in self.boards if self._alive(b)]
        pending: deque[list[int]] = deque(self._chunks(models, len(live) or 1))
        total, done = len(models), 0
        results: list[ChunkResult] = []
        running: dict[Future[dict[str, Any]], tuple[RemoteBoard, list[int]]] = {}
        backoff: dict[str, float] = {}  # url -> monotonic time before which not to retry
        delay: dict[str, float] = {}  # url -> the next wait after a busy answer (s)
        waiting_since = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(self.boards)) as executor:
            while pending or running:
                now = time.monotonic()
                in_use = {board.url for board, _ in running.values()}
                for board in self._rotation():
                    if not pending:
                        break
                    if board.url in in_use or backoff.get(board.url, 0) > now:
                        continue
                    if not self._alive(board):
                        continue
                    chunk = pending.popleft()
                    sub = [models[i] for i in chunk]
                    running[executor.submit(board.measure, sub, settings)] = (board, chunk)
                if not running:
                    if not any(self._alive(b) for b in self.boards):
                        raise self._all_dead()
                    if now - waiting_since > self.timeout:
                        raise DeviceError(
                            f"every board of device '{self.name}' stayed busy for "
                            f"{self.timeout:.0f} s; free one or add boards to the profile"
                        )
                    wake = min(backoff.values(), default=now + 0.05)
                    time.sleep(min(max(wake - now, 0.01), 1.0))
                    continue
                finished, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    board, chunk = running.pop(future)
                    try:
                        answer = future.result()
                    except BoardBusy:
                        previous = delay.get(board.url, 0.02)
                        delay[board.url] = min(previous * 2, 1.0)
                        backoff[board.url] = time.monotonic() + previous
                        pending.appendleft(chunk)
                        continue
                    except BoardUnreachable as exc:
                        self._mark_dead(board.url, str(exc))
                        pending.appendleft(chunk)
                        continue
                    except BoardRejected:
                        raise
                    delay.pop(board.url, None)
                    waiting_since = time.monotonic()
                    got = answer.get("results")
                    if not isinstance(got, list) or len(got) != len(chunk):
                        raise DeviceError(f"{board.url} answered with a malformed result")
                    results.append(
                        ChunkResult(
                            tuple(chunk), tuple(got), dict(answer.get("env", {})), board.url
                        )
                    )
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        return results

    def _rotation(self) -> list[RemoteBoard]:
        with self._lock:
            start = self._next % len(self.boards)
            self._next += 1
        return self.boards[start:] + self.boards[:start]

    def _all_dead(self) -> DeviceError:
        reasons = "; ".join(reason for _, reason in self._dead.values())
        return DeviceError(
            f"no server of device '{self.name}' is reachable any more ({reasons}); restart "
            "them with `hwnas device serve`"
        )
