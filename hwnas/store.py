"""RunStore: a run's trials, measurements and strategy state in SQLite (``hwnas.db``).

Every trial is written when it completes. Asking (new queued trials + the strategy state
after the ask) and telling (trials marked as told + the state after the tell) are single
transactions, so a run killed at any moment resumes consistently: finished but untold trials
are told again, queued and running ones are evaluated again, completed ones never repeat.

An exclusive ``flock`` on ``hwnas.lock`` marks the run as in use; the kernel drops it when
the process dies, so a killed run never stays locked, and a run that stops (also on Ctrl-C)
removes the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import hwnas.rundir as rundir
from hwnas import state_delta
from hwnas.errors import HwnasError, RunError
from hwnas.types import Candidate, Measurement, Trial, TrialState

try:
    import fcntl
except ModuleNotFoundError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DB_NAME = rundir.DB
LOCK_NAME = rundir.LOCK
SCHEMA_VERSION = 1
#: Tables every hwnas run database has; a file without them is not a run (left untouched).
_TABLES = frozenset({"meta", "trials", "measurements", "strategy_state", "events"})

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    number INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    space TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    parent INTEGER,
    candidate TEXT NOT NULL,
    error TEXT,
    asked REAL NOT NULL,
    started REAL,
    finished REAL,
    told INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX trials_key ON trials (key);
CREATE TABLE measurements (
    trial INTEGER NOT NULL REFERENCES trials (number),
    metric TEXT NOT NULL,
    value REAL,
    unit TEXT NOT NULL,
    device TEXT,
    stats TEXT,
    env TEXT,
    PRIMARY KEY (trial, metric)
);
CREATE TABLE strategy_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL,
                             updated REAL NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL,
                     data TEXT NOT NULL);
"""
# The strategy state in parts (see hwnas.state_delta); runs written before it keep their state
# in strategy_state (one JSON row) until the first save, which moves it here.
_STATE_PARTS = """
CREATE TABLE IF NOT EXISTS strategy_parts (id INTEGER PRIMARY KEY, path TEXT NOT NULL,
                                           value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS strategy_parts_path ON strategy_parts (path);
"""


class RunStore:
    """Open with :meth:`create` (new run) or :meth:`open` (existing run)."""

    def __init__(self, run_dir: Path, connection: sqlite3.Connection, lock: Any) -> None:
        self.run_dir = run_dir
        self._db = connection
        self._lock = lock
        if lock is not None:
            with self._db:
                self._db.executescript(_STATE_PARTS)
        # JSON text of each stored part; None: read them first.
        self._parts: dict[state_delta.Path, str] | None = None
        self._pending_parts: dict[state_delta.Path, str] | None = None
        #: Bytes of strategy state written by this store object (JSON text of the parts).
        self.state_bytes_written = 0

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: str | Path, config: dict[str, Any]) -> RunStore:
        run_dir = Path(run_dir)
        if os.path.lexists(run_dir / DB_NAME):
            raise RunError(
                f"'{run_dir}' already holds a run; continue it with `hwnas resume {run_dir}` "
                "or choose another --out"
            )
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise RunError(
                f"'{run_dir}' exists and is not an empty directory; choose another --out"
            )
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create run directory '{run_dir}': {exc.strerror}") from None
        lock = _acquire_lock(run_dir)
        db = _connect(run_dir / DB_NAME)
        with db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("config", json.dumps(config)),
                    ("created", repr(time.time())),
                ],
            )
        return cls(run_dir, db, lock)

    @classmethod
    def open(cls, run_dir: str | Path, *, read_only: bool = False) -> RunStore:
        """Open a run. The file is first checked read-only to be an intact hwnas run, so a
        foreign or damaged file is refused (:class:`RunError`) without a byte changed;
        ``read_only`` opens never write, switch journal modes, or take the run's lock."""
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        check_run_file(path)
        lock = None if read_only else _acquire_lock(run_dir)
        try:
            db = _connect(path, read_only=read_only)
        except sqlite3.DatabaseError as exc:
            if lock is not None:
                os.close(lock)
            raise _damaged(path, exc) from None
        return cls(run_dir, db, lock)

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            _release_lock(self.run_dir, self._lock)
            self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata and events ---------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Whatever a damaged file makes reading raise becomes one RunError naming it."""
        try:
            yield
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _damaged(self.run_dir / DB_NAME, exc) from None
        except HwnasError as exc:
            raise _damaged(self.run_dir / DB_NAME, exc) from None

    def config(self) -> dict[str, Any]:
        with self._reading():
            config = json.loads(self.get_meta("config") or "{}")
            if not isinstance(config, dict):
                raise ValueError("its config is not a JSON object")
            return config

    def get_meta(self, key: str) -> str | None:
        with self._reading():
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def log_event(self, kind: str, data: dict[str, Any]) -> None:
        """Append a strategy or runner event (e.g. predictor quality per round)."""
        with self._db:
            self._db.execute(
                "INSERT INTO events (time, kind, data) VALUES (?, ?, ?)",
                (time.time(), kind, json.dumps(data)),
            )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT time, kind, data FROM events"
        with self._reading():
            rows = (
                self._db.execute(query + " WHERE kind = ? ORDER BY id", (kind,))
                if kind
                else self._db.execute(query + " ORDER BY id")
            )
            return [{"time": t, "kind": k, **json.loads(d)} for t, k, d in rows]

    # -- the ask / evaluate / tell cycle ---------------------------------------------------
    def add_candidates(
        self, candidates: Sequence[Candidate], strategy_state: dict[str, Any]
    ) -> list[Trial]:
        """Queue ``candidates`` as new trials and save the strategy state, atomically."""
        now = time.time()
        with self._db:
            start = self._db.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM trials").fetchone()
            trials = [
                Trial(number=start[0] + i, candidate=c, state=TrialState.QUEUED)
                for i, c in enumerate(candidates)
            ]
            self._db.executemany(
                "INSERT INTO trials (number, key, space, spec, state, parent, candidate, asked)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        t.number,
                        t.candidate.key(),
                        t.genotype.space,
                        t.genotype.spec,
                        t.state.value,
                        t.parent,
                        json.dumps(t.candidate.to_json()),
                        now,
                    )
                    for t in trials
                ],
            )
            self._save_state(strategy_state, now)
        self._committed()
        return trials

    def mark_running(self, number: int, started: float) -> None:
        with self._db:
            self._db.execute(
                "UPDATE trials SET state = ?, started = ? WHERE number = ?",
                (TrialState.RUNNING.value, started, number),
            )

    def finish(self, trial: Trial) -> None:
        """Write a completed or failed trial and its measurements."""
        with self._db:
            self._write_finished(trial)

    def _write_finished(self, trial: Trial) -> None:
        if not trial.state.finished:
            raise ValueError(f"trial {trial.number} is not finished")
        self._db.execute(
            "UPDATE trials SET state = ?, error = ?, started = ?, finished = ? WHERE number = ?",
            (trial.state.value, trial.error, trial.started, trial.finished, trial.number),
        )
        self._db.execute("DELETE FROM measurements WHERE trial = ?", (trial.number,))
        self._db.executemany(
            "INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?)",
            [_measurement_row(trial.number, m) for m in trial.measurements.values()],
        )

    def record(self, trials: Sequence[Trial], strategy_state: dict[str, Any]) -> None:
        """Write finished trials and mark them told with the strategy's new state, atomically."""
        with self._db:
            for trial in trials:
                self._write_finished(trial)
            self._db.executemany(
                "UPDATE trials SET told = 1 WHERE number = ?", [(t.number,) for t in trials]
            )
            self._save_state(strategy_state, time.time())
        self._committed()

    def mark_told(self, numbers: Iterable[int], strategy_state: dict[str, Any]) -> None:
        now = time.time()
        with self._db:
            self._db.executemany(
                "UPDATE trials SET told = 1 WHERE number = ?", [(n,) for n in numbers]
            )
            self._save_state(strategy_state, now)
        self._committed()

    def save_strategy_state(self, state: dict[str, Any]) -> None:
        with self._db:
            self._save_state(state, time.time())
        self._committed()

    def _save_state(self, state: dict[str, Any], now: float) -> None:
        """Write the parts of ``state`` that changed (inside the caller's transaction)."""
        if self._parts is None:
            stored = state_delta.texts(self._stored_parts())
        else:
            stored = self._parts
        self._parts = None  # unknown until this transaction commits
        new = state_delta.flatten(state)
        changes = state_delta.diff(stored, new)
        self._db.executemany(
            "DELETE FROM strategy_parts WHERE path = ?",
            [(state_delta.encode_path(p),) for p in changes.delete],
        )
        chunks = list(changes.chunks())
        self._db.executemany("INSERT INTO strategy_parts (path, value) VALUES (?, ?)", chunks)
        self._db.execute("DELETE FROM strategy_state")
        self.state_bytes_written += sum(len(path) + len(value) for path, value in chunks)
        self._pending_parts = new

    def _committed(self) -> None:
        self._parts = self._pending_parts

    def _stored_parts(self) -> dict[state_delta.Path, Any]:
        legacy = self._db.execute("SELECT state FROM strategy_state WHERE id = 1").fetchone()
        if legacy is not None:
            return {}  # parts are empty until the first save moves the legacy state
        rows = self._db.execute("SELECT path, value FROM strategy_parts ORDER BY id").fetchall()
        return state_delta.join(rows)

    def strategy_state(self) -> dict[str, Any] | None:
        with self._reading():
            row = self._db.execute("SELECT state FROM strategy_state WHERE id = 1").fetchone()
            if row is not None:
                state = json.loads(row[0])
                if not isinstance(state, dict):
                    raise ValueError("its strategy state is not a JSON object")
                return state
            if not self._has_parts_table():
                return None
            parts = self._stored_parts()
            return state_delta.unflatten(parts) if parts else None

    def _has_parts_table(self) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'strategy_parts'"
        return self._db.execute(query).fetchone() is not None

    # -- reading ---------------------------------------------------------------------------
    def trials(self, states: Iterable[TrialState] | None = None) -> list[Trial]:
        """All trials in number order (optionally only those in ``states``)."""
        with self._reading():
            return self._trials(states)

    def _trials(self, states: Iterable[TrialState] | None) -> list[Trial]:
        measurements: dict[int, dict[str, Measurement]] = {}
        for row in self._db.execute("SELECT * FROM measurements"):
            measurements.setdefault(row[0], {})[row[1]] = _measurement_from_row(row)
        query = "SELECT number, state, candidate, error, started, finished FROM trials"
        params: tuple[str, ...] = ()
        if states is not None:
            values = tuple(s.value for s in states)
            query += f" WHERE state IN ({', '.join('?' * len(values))})"
            params = values
        return [
            Trial(
                number=number,
                candidate=Candidate.from_json(json.loads(candidate)),
                state=TrialState(state),
                measurements=measurements.get(number, {}),
                error=error,
                started=started,
                finished=finished,
            )
            for number, state, candidate, error, started, finished in self._db.execute(
                query + " ORDER BY number", params
            )
        ]

    def trial(self, number: int) -> Trial:
        for trial in self.trials():
            if trial.number == number:
                return trial
        raise RunError(f"run '{self.run_dir}' has no trial {number}")

    def untold_finished(self) -> list[int]:
        rows = self._db.execute(
            "SELECT number FROM trials WHERE told = 0 AND state IN (?, ?) ORDER BY number",
            (TrialState.COMPLETE.value, TrialState.FAILED.value),
        )
        return [r[0] for r in rows]

    def known_keys(self) -> set[str]:
        """Candidate keys (genotype, and fidelity when set) of every trial."""
        return {r[0] for r in self._db.execute("SELECT key FROM trials")}

    def count(self, states: Iterable[TrialState]) -> int:
        values = tuple(s.value for s in states)
        row = self._db.execute(
            f"SELECT COUNT(*) FROM trials WHERE state IN ({', '.join('?' * len(values))})", values
        ).fetchone()
        return int(row[0])


def check_run_file(path: Path) -> None:
    """RunError unless ``path`` is an intact hwnas run database; opened read-only, so a foreign
    SQLite file, an empty file or a damaged one is refused without being changed."""
    run_dir = path.parent
    if not os.path.lexists(path):
        raise RunError(
            f"'{run_dir}' is not a hwnas run (not a run directory: no {DB_NAME}); start one "
            "with `hwnas search`"
        )
    for suffix in ("", "-wal", "-shm", "-journal"):
        rundir.check_regular(Path(f"{path}{suffix}"))
    try:
        db = _connect(path, read_only=True)
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables >= _TABLES:
            found = ", ".join(sorted(tables)) or "none"
            raise RunError(
                f"'{path}' is not a hwnas run database (tables: {found});"
                " hwnas leaves it untouched: point at a run directory made by `hwnas search`"
            )
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        version = meta.get("schema_version")
        if version is None or not str(version).isdigit():
            raise RunError(f"'{path}' has no valid schema version ({version!r}); it is damaged")
        if int(version) != SCHEMA_VERSION:
            raise RunError(
                f"'{path}' has schema version {version}, this hwnas reads {SCHEMA_VERSION}; "
                "use the hwnas version that wrote it"
            )
        config = json.loads(meta.get("config") or "null")
        if not isinstance(config, dict):
            raise ValueError("its config is not a JSON object")
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise _damaged(path, exc) from None
    finally:
        db.close()


def _damaged(path: Path, exc: BaseException) -> RunError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RunError(
        f"run database '{path}' is damaged ({reason}); it was left unchanged: restore it from "
        "a copy or start a new run"
    )


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        # mode=ro never writes or changes the journal mode, but on a WAL database with no
        # writer it creates the -wal and -shm files; with no -wal file there is no writer, so
        # the file is opened immutable and nothing at all is created.
        live = path.with_name(path.name + "-wal").exists()
        mode = "mode=ro" if live else "immutable=1"
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?{mode}"
        db = sqlite3.connect(uri, uri=True, isolation_level="DEFERRED", timeout=30.0)
        db.execute("PRAGMA query_only = ON")
        return db
    db = sqlite3.connect(path, isolation_level="DEFERRED", timeout=30.0)
    # WAL + NORMAL: a commit survives a process crash (not a power cut) without an fsync each.
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    return db


def _acquire_lock(run_dir: Path) -> int:
    """The run's lock file descriptor, flock'ed; never follows a planted symlink."""
    while True:
        fd = rundir.open_lock(run_dir)
        if fcntl is None:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunError(
                f"run '{run_dir}' is in use by another hwnas process; wait for it to finish "
                "or stop it first"
            ) from None
        # The previous holder unlinks the file when it closes: if that happened between our
        # open and flock, we hold a lock on a deleted file; take the one now at the path.
        try:
            if os.fstat(fd).st_ino == os.lstat(run_dir / rundir.LOCK).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release_lock(run_dir: Path, fd: int) -> None:
    """Remove the lock file while still holding it, then let go: no stale file stays behind."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(run_dir / rundir.LOCK)
    os.close(fd)


def _measurement_row(trial: int, m: Measurement) -> tuple[Any, ...]:
    return (
        trial,
        m.metric,
        m.value,
        m.unit,
        m.device,
        json.dumps(dict(m.stats)) if m.stats else None,
        json.dumps(dict(m.env)) if m.env else None,
    )


def _measurement_from_row(row: Sequence[Any]) -> Measurement:
    _, metric, value, unit, device, stats, env = row
    return Measurement(
        metric=metric,
        value=float("nan") if value is None else float(value),
        unit=unit,
        device=device,
        stats=json.loads(stats) if stats else {},
        env=json.loads(env) if env else {},
    )
