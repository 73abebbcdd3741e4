"""``hwnas dashboard``: a live view of running (or finished) searches in the browser.

A small standard-library HTTP server (``ThreadingHTTPServer``, loopback by default) serves one
page and JSON endpoints the page polls: a run's trials, front, hypervolume over evaluations and
the best feasible trial under a budget. Runs are read through :func:`hwnas.results.read_run`
(a read-only SQLite connection that writes nothing into the run); the page loads nothing from
outside the server, so it works offline.

Endpoints (GET or HEAD only; anything else is refused with 405):

``/``                    the page
``/app.js``, ``/app.css`` its script and style
``/api/runs``            ``[{"index", "label", "run_dir"}]``
``/api/run?run=I``       a snapshot of run ``I`` (see :func:`snapshot`)
``/api/pick?run=I&metric=M&max=X``  the best feasible trial with ``M <= X``
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from hwnas.dashboard.page import APP_CSS, APP_JS, PAGE_HTML
from hwnas.errors import ConfigError, HwnasError
from hwnas.objectives.base import Direction, Objective
from hwnas.objectives.pareto import is_feasible
from hwnas.plot.data import RunData, hypervolume_trace, load_run
from hwnas.plot.render import _unique_labels
from hwnas.store import DB_NAME
from hwnas.types import Trial, TrialState

#: Most recent trials listed in a snapshot's table, and most points in its scatter plot.
MAX_TABLE_ROWS = 200
MAX_POINTS = 4000
MAX_HV_POINTS = 1000
_MAX_TARGET = 1024  # longest request target accepted (path and query)
_REQUEST_TIMEOUT_S = 15.0


# -- snapshots ------------------------------------------------------------------------------
def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _values(trial: Trial) -> dict[str, float | None]:
    return {name: _finite(m.value) for name, m in sorted(trial.measurements.items())}


def _row(trial: Trial, run: RunData) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.value,
        "feasible": is_feasible(trial, run.constraints),
        "values": _values(trial),
        "started": trial.started,
        "finished": trial.finished,
        "duration": trial.duration,
        "genotype": trial.genotype.spec,
        "error": (trial.error or "").strip().splitlines()[-1][:300] if trial.error else None,
    }


def _thin(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` items, evenly spaced, always keeping the last."""
    if len(items) <= limit:
        return items
    idx = np.unique(np.linspace(0, len(items) - 1, limit).round().astype(int))
    return [items[i] for i in idx]


def snapshot(run: RunData) -> dict[str, Any]:
    """What the page shows of one run; sizes are bounded whatever the run's size."""
    objectives = run.objectives
    units = run.front.units
    finished = sorted(
        (t for t in run.trials if t.state.finished),
        key=lambda t: (t.finished if t.finished is not None else math.inf, t.number),
    )
    running = [t for t in run.trials if t.state is TrialState.RUNNING]
    queued = [t for t in run.trials if t.state is TrialState.QUEUED]
    members = {t.number for t in run.front.members}
    plotted = [t for t in finished if t.state is TrialState.COMPLETE and t.number not in members]
    points = [
        {"number": t.number, "values": _values(t), "feasible": is_feasible(t, run.constraints)}
        for t in _thin(plotted, MAX_POINTS)
    ]
    if len(objectives) >= 2:
        evaluations, hv = hypervolume_trace(
            run.trials,
            objectives,
            run.constraints,
            np.array([o.sign * v for o, v in zip(objectives, run.front.ideal)])
            if run.front.ideal
            else np.zeros(len(objectives)),
            np.array([o.sign * v for o, v in zip(objectives, run.front.nadir)])
            if run.front.nadir
            else np.ones(len(objectives)),
        )
        trace = _thin(list(zip(evaluations.tolist(), hv.tolist())), MAX_HV_POINTS)
    else:
        trace = []
    metrics = sorted({m for t in run.trials for m in t.measurements})
    config = run.config
    return {
        "label": run.label,
        "run_dir": str(run.run_dir.resolve()),
        "space": config.space,
        "strategy": config.strategy,
        "budget": config.budget,
        "objectives": [
            {"metric": o.metric, "direction": o.direction.value, "unit": units.get(o.metric, "")}
            for o in objectives
        ],
        "constraints": [str(c) for c in run.constraints],
        "units": {m: units.get(m, "") for m in metrics},
        "counts": {**run.front.counts, "running": len(running), "queued": len(queued)},
        "hypervolume": run.front.hypervolume,
        "knee": run.front.knee.number if run.front.knee is not None else None,
        "front": [_row(t, run) for t in run.front.members],
        "points": points,
        "hv_trace": trace,
        "trials": [
            _row(t, run) for t in [*running, *queued[::-1], *finished[::-1]][:MAX_TABLE_ROWS]
        ],
        "budget_metrics": [m for m in metrics if m not in _quality_metrics(run)],
    }


def _quality_metrics(run: RunData) -> list[str]:
    """The metric :func:`pick` maximises or minimises: not one to set a budget on."""
    return [_quality(run).metric] if run.objectives else []


def _quality(run: RunData) -> Objective:
    """The first maximised objective (accuracy), else the first objective (error)."""
    return next((o for o in run.objectives if o.direction is Direction.MAX), run.objectives[0])


def pick(run: RunData, metric: str, limit: float) -> dict[str, Any]:
    """The best feasible trial with ``metric <= limit``: best on the first maximised objective
    (accuracy), else on the first objective; ties go to the lower ``metric``."""
    if metric not in {m for t in run.trials for m in t.measurements}:
        raise ConfigError(f"no trial measured '{metric}'")
    quality = _quality(run)
    candidates = [
        t
        for t in run.trials
        if is_feasible(t, run.constraints)
        and metric in t.measurements
        and t.value(metric) <= limit
        and math.isfinite(t.value(quality.metric))
    ]
    if not candidates:
        return {"metric": metric, "max": limit, "quality": quality.metric, "trial": None}
    best = min(candidates, key=lambda t: (quality.sign * t.value(quality.metric), t.value(metric)))
    return {
        "metric": metric,
        "max": limit,
        "quality": quality.metric,
        "candidates": len(candidates),
        "on_front": best.number in {t.number for t in run.front.members},
        "trial": _row(best, run),
    }


# -- reading with a cache -------------------------------------------------------------------
@dataclass
class _Cached:
    stamp: tuple[float, ...]
    run: RunData
    snapshot: dict[str, Any]


class RunViews:
    """The runs being watched; a run is read again only when its database files changed."""

    def __init__(self, run_dirs: Sequence[str | os.PathLike[str]]) -> None:
        if not run_dirs:
            raise ConfigError("give at least one run directory to watch")
        self.dirs = [Path(d) for d in run_dirs]
        for d in self.dirs:
            if not (d / DB_NAME).is_file():
                raise ConfigError(
                    f"'{d}' is not a hwnas run (no {DB_NAME}); start one with `hwnas search`"
                )
        self.labels = _unique_labels(self.dirs)
        self._cache: dict[int, _Cached] = {}
        self._lock = threading.Lock()

    def _stamp(self, index: int) -> tuple[float, ...]:
        stamp: list[float] = []
        for suffix in ("", "-wal"):
            try:
                st = (self.dirs[index] / (DB_NAME + suffix)).stat()
                stamp += [st.st_mtime_ns, st.st_size]
            except FileNotFoundError:
                stamp += [-1, -1]
        return tuple(stamp)

    def get(self, index: int) -> _Cached:
        stamp = self._stamp(index)
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None and cached.stamp == stamp:
                return cached
        run = load_run(self.dirs[index], label=self.labels[index])
        fresh = _Cached(stamp, run, snapshot(run))
        with self._lock:
            self._cache[index] = fresh
        return fresh


# -- HTTP -----------------------------------------------------------------------------------
class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values or len(values) != 1 or len(values[0]) > 200:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"give exactly one '{name}' parameter")
    return values[0]


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    timeout = _REQUEST_TIMEOUT_S  # a client that stalls is dropped, not waited on forever
    server_version = "hwnas-dashboard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def do_GET(self) -> None:
        self._respond(head=False)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b'{"error": "read-only: GET or HEAD only"}',
                   "application/json", head=False, extra={"Allow": "GET, HEAD"})  # fmt: skip

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _respond(self, *, head: bool) -> None:
        try:
            self._check_host()
            if len(self.path) > _MAX_TARGET:
                raise BadRequest(HTTPStatus.REQUEST_URI_TOO_LONG, "request target too long")
            if self.headers.get("Content-Length", "0") not in ("", "0"):
                raise BadRequest(HTTPStatus.BAD_REQUEST, "requests have no body")
            status, body, kind = self._route()
        except BadRequest as exc:
            status, kind = exc.status, "application/json"
            body = json.dumps({"error": str(exc)}).encode()
        except HwnasError as exc:
            status, kind = HTTPStatus.NOT_FOUND, "application/json"
            body = json.dumps({"error": str(exc)}).encode()
        except sqlite3.DatabaseError as exc:
            # A write checkpointed under a reader: the next poll reads a consistent state.
            status, kind = HTTPStatus.SERVICE_UNAVAILABLE, "application/json"
            body = json.dumps({"error": f"run database busy ({exc}); try again"}).encode()
        self._send(status, body, kind, head=head)

    def _check_host(self) -> None:
        # A page on another site must not reach a loopback server by DNS rebinding.
        allowed = self.server.allowed_hosts
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if allowed is not None and host not in allowed:
            raise BadRequest(HTTPStatus.FORBIDDEN, f"unexpected Host header '{host}'")

    def _route(self) -> tuple[HTTPStatus, bytes, str]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=8)
        views = self.server.views
        if parts.path in ("/", "/index.html"):
            return HTTPStatus.OK, PAGE_HTML.encode(), "text/html; charset=utf-8"
        if parts.path == "/app.js":
            return HTTPStatus.OK, APP_JS.encode(), "text/javascript; charset=utf-8"
        if parts.path == "/favicon.ico":  # browsers ask for it; no icon, and no error either
            return HTTPStatus.NO_CONTENT, b"", "image/x-icon"
        if parts.path == "/app.css":
            return HTTPStatus.OK, APP_CSS.encode(), "text/css; charset=utf-8"
        if parts.path == "/api/runs":
            runs = [
                {"index": i, "label": label, "run_dir": str(d.resolve())}
                for i, (label, d) in enumerate(zip(views.labels, views.dirs))
            ]
            return (
                HTTPStatus.OK,
                _json({"runs": runs, "poll_ms": self.server.poll_ms}),
                "application/json",
            )
        if parts.path in ("/api/run", "/api/pick"):
            index = self._run_index(query)
            cached = views.get(index)
            if parts.path == "/api/run":
                return HTTPStatus.OK, _json(cached.snapshot), "application/json"
            metric = _one(query, "metric")
            try:
                limit = float(_one(query, "max"))
            except ValueError:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "'max' must be a number") from None
            if not math.isfinite(limit):
                raise BadRequest(HTTPStatus.BAD_REQUEST, "'max' must be a finite number")
            return HTTPStatus.OK, _json(pick(cached.run, metric, limit)), "application/json"
        raise BadRequest(HTTPStatus.NOT_FOUND, f"no such page '{parts.path[:80]}'")

    def _run_index(self, query: dict[str, list[str]]) -> int:
        text = _one(query, "run")
        if not text.isdigit() or int(text) >= len(self.server.views.dirs):
            raise BadRequest(
                HTTPStatus.NOT_FOUND,
                f"no run '{text[:20]}'; runs are 0..{len(self.server.views.dirs) - 1}",
            )
        return int(text)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        kind: str,
        *,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self'; frame-ancestors 'none'",
        )
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _json(data: Any) -> bytes:
    return json.dumps(data, allow_nan=False).encode()


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16

    def __init__(
        self,
        views: RunViews,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        poll_ms: int = 2000,
        verbose: bool = False,
    ) -> None:
        self.views = views
        self.poll_ms = poll_ms
        self.verbose = verbose
        loopback = host in ("127.0.0.1", "localhost", "::1")
        self.allowed_hosts = {"127.0.0.1", "localhost", "::1"} if loopback else None
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def serve(
    run_dirs: Sequence[str | os.PathLike[str]],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    poll_ms: int = 2000,
    verbose: bool = False,
) -> DashboardServer:
    """A server for ``run_dirs``, bound and ready; call ``serve_forever()`` on it."""
    if not 200 <= poll_ms <= 600_000:
        raise ConfigError("--refresh must be between 0.2 s and 600 s")
    return DashboardServer(
        RunViews(run_dirs), host=host, port=port, poll_ms=poll_ms, verbose=verbose
    )
