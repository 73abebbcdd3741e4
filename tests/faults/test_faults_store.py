"""Damaged and foreign databases: every reading or resuming command answers with one line
naming the file, exits 2, and leaves the file byte for byte as it was. A foreign SQLite file
is not even switched to WAL mode, grown, or given a lock file beside it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import cli, snapshot

from hwnas.store import DB_NAME, RunStore


def _sql(statement: str) -> Callable[[Path], None]:
    def damage(db: Path) -> None:
        connection = sqlite3.connect(db)
        with connection:
            connection.executescript(statement)
        connection.close()

    return damage


def _overwrite_pages(db: Path) -> None:
    data = bytearray(db.read_bytes())
    noise = np.random.default_rng(0).integers(0, 256, len(data) - 4096, dtype=np.uint8)
    data[4096:] = noise.tobytes()  # every page after the first: the header still says SQLite
    db.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "damaged pages": _overwrite_pages,
    "config not JSON": _sql("UPDATE meta SET value = '{' WHERE key = 'config'"),
    "config not an object": _sql("UPDATE meta SET value = '[1, 2]' WHERE key = 'config'"),
    "schema version abc": _sql("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'"),
    "schema version 99": _sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'"),
    "candidate not JSON": _sql("UPDATE trials SET candidate = 'xx' WHERE number = 0"),
    "candidate wrong shape": _sql("UPDATE trials SET candidate = '{\"genotype\": 3}'"),
    "unknown state": _sql("UPDATE trials SET state = 'WEIRD' WHERE number = 1"),
    "stats not JSON": _sql("UPDATE measurements SET stats = '{' WHERE trial = 0"),
    "only the meta table": _sql(
        "DROP TABLE measurements; DROP TABLE trials; DROP TABLE events; DROP TABLE strategy_state"
    ),
    "empty file": lambda db: db.write_bytes(b""),
    "not SQLite": lambda db: db.write_bytes(b"not a database\n" * 500),
}
COMMANDS = {
    "front": ["front"],
    "lineage": ["lineage", "{run}", "knee"],
    "plot": ["plot"],
    "report": ["report"],
    "export": ["export"],
    "resume": ["resume", "{run}", "--budget", "12"],
}
# SQLite's own shared-memory and WAL files may appear beside an intact-looking WAL database.
SQLITE_FILES = (f"{DB_NAME}-wal", f"{DB_NAME}-shm")


def _args(command: list[str], run: Path) -> list[str]:
    args = [part.format(run=run) for part in command]
    return args if len(args) > 1 else [*args, str(run)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_database_is_one_line_and_left_unchanged(table_run, damage, command):
    DAMAGE[damage](table_run / DB_NAME)
    before = snapshot(table_run, ignore=SQLITE_FILES)
    line = cli(*_args(COMMANDS[command], table_run)).one_error_line()
    assert str(table_run / DB_NAME) in line or str(table_run) in line
    assert snapshot(table_run, ignore=SQLITE_FILES) == before


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_foreign_sqlite_file_is_not_touched(tmp_path, command):
    run = tmp_path / "theirs"
    run.mkdir()
    connection = sqlite3.connect(run / DB_NAME)  # another tool's database, rollback journal
    with connection:
        connection.execute("CREATE TABLE users (name TEXT)")
        connection.execute("INSERT INTO users VALUES ('ada')")
    connection.close()
    before = snapshot(run)
    assert "not a hwnas run database" in cli(*_args(COMMANDS[command], run)).one_error_line()
    assert snapshot(run) == before  # same bytes, still not WAL, no lock or journal files


def test_an_empty_file_is_not_grown(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    (run / DB_NAME).write_bytes(b"")
    for command in ("front", "lineage", "resume"):
        cli(command, run, *(["knee"] if command == "lineage" else [])).one_error_line()
    assert (run / DB_NAME).stat().st_size == 0 and sorted(p.name for p in run.iterdir()) == [
        DB_NAME
    ]


def test_another_strategys_state_is_refused_at_resume(tmp_path, macro_table, table_run):
    nsga2 = tmp_path / "nsga2"
    assert (
        cli(
            "search", "--space", "macro", "--benchmark", macro_table, "-o", "mean_acc:max",
            "-o", "params:min", "--strategy", "nsga2", "--budget", 4, "--out", nsga2,
        ).code
        == 0
    )  # fmt: skip
    with RunStore.open(table_run, read_only=True) as store:
        random_state = json.dumps(store.strategy_state())
    # Plant random's state in nsga2's run, in the one-row form older runs have (still read).
    _sql(
        "DELETE FROM strategy_parts; "
        f"INSERT OR REPLACE INTO strategy_state VALUES (1, '{random_state}', 0)"
    )(nsga2 / DB_NAME)
    before = (nsga2 / DB_NAME).read_bytes()
    line = cli("resume", nsga2, "--budget", 8).one_error_line()
    assert "strategy state" in line and "nsga2" in line
    assert (nsga2 / DB_NAME).read_bytes() == before
