"""Pools of boards: work spread over them, dead boards' work moved, a search through a kill.

Servers started with ``--simulate-ms`` wait that long per model (untimed, sleeping): a slow
board whose time is dominated by a fixed cost, so that two of them measure in parallel even
on a machine with two busy cores.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch
from remote_helpers import MACRO_JSON, remote_profile
from torch import nn

import hwnas.api
from hwnas.devices import load_device
from hwnas.errors import DeviceError
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.ort import export_onnx_bytes, measure_onnx_latencies
from hwnas.remote.client import RemoteBoard
from hwnas.remote.pool import BoardPool

SETTINGS = {"warmup": 1, "repeats": 3, "clock": "thread", "input_shape": [3, 8, 8]}


def _models(n: int) -> list[bytes]:
    torch.manual_seed(0)
    return [
        export_onnx_bytes(nn.Sequential(nn.Conv2d(3, 4 + i, 3), nn.ReLU()).eval(), (3, 8, 8))
        for i in range(n)
    ]


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_two_boards_measure_a_batch_faster_than_one(servers) -> None:
    a = servers("--simulate-ms", "400", name="board-a")
    b = servers("--simulate-ms", "400", name="board-b")
    models = _models(8)
    one = BoardPool(urls=[a.url], token=None, name="one")
    two = BoardPool(urls=[a.url, b.url], token=None, name="two")
    one.probe(), two.probe()
    start = time.perf_counter()
    single = one.measure(models, SETTINGS)
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    double = two.measure(models, SETTINGS)
    t_two = time.perf_counter() - start
    # 8 x 0.4 s on one board, 4 x 0.4 s on each of two: a ratio near 0.5, asserted with margin.
    assert t_two / t_one < 0.8, (t_one, t_two)
    assert sorted(i for c in single for i in c.indices) == list(range(8))
    assert sorted(i for c in double for i in c.indices) == list(range(8))
    boards = {c.env["board"]: len(c.indices) for c in double}
    assert boards == {"board-a": 4, "board-b": 4}


def test_dead_board_work_moves_to_a_live_one(servers) -> None:
    live = servers(name="board-b")
    pool = BoardPool(urls=[_closed_port_url(), live.url], token=None, name="pair")
    chunks = pool.measure(_models(4), SETTINGS)
    assert {c.env["board"] for c in chunks} == {"board-b"}
    assert sorted(i for c in chunks for i in c.indices) == [0, 1, 2, 3]
    with pytest.raises(DeviceError, match="no server of device 'none' is reachable"):
        BoardPool(urls=[_closed_port_url()], token=None, name="none").measure(_models(1), SETTINGS)


def test_board_killed_mid_measurement(servers) -> None:
    a = servers("--simulate-ms", "3000", name="board-a")
    b = servers(name="board-b")
    pool = BoardPool(urls=[a.url, b.url], token=None, name="pair")
    pool.probe()
    result: list = []
    thread = threading.Thread(target=lambda: result.append(pool.measure(_models(4), SETTINGS)))
    thread.start()
    board_a = RemoteBoard(a.url, token=None)
    while not board_a.health()["busy"]:  # board a holds its chunk: kill it mid-measurement
        assert thread.is_alive()
    a.kill()
    thread.join(timeout=120)
    (chunks,) = result
    assert sorted(i for c in chunks for i in c.indices) == [0, 1, 2, 3]
    assert {c.env["board"] for c in chunks} == {"board-b"}


def _measured_by(db: Path) -> dict[int, str]:
    import json

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT trial, env FROM measurements WHERE metric = 'latency'"
        ).fetchall()
    return {trial: json.loads(env)["board"] for trial, env in rows}


def test_search_goes_on_when_a_board_dies(servers, tmp_path: Path) -> None:
    if not MACRO_JSON.is_file():
        pytest.skip(f"{MACRO_JSON} is not present")
    a = servers("--simulate-ms", "500", name="board-a")
    b = servers("--simulate-ms", "100", name="board-b")
    profile = remote_profile(tmp_path, [a.url, b.url], repeats=3)
    board_a = RemoteBoard(a.url, token=None)

    def kill_a_mid_measurement() -> None:
        # After board a has measured one model, kill it while it measures the next.
        while board_a.info()["measured"] < 1 or not board_a.health()["busy"]:
            pass
        a.kill()

    killer = threading.Thread(target=kill_a_mid_measurement)
    killer.start()
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        hwnas.api.search(
            space="macro",
            benchmark=MACRO_JSON,
            objectives=["mean_acc:max", "latency"],
            device=str(profile),
            profiling={"latency": "measured"},
            budget=8,
            seed=0,
            out=out,
        )
    killer.join(timeout=60)
    assert a.process.poll() is not None  # board a really died during the search
    with sqlite3.connect(out / "hwnas.db") as conn:
        states = [s for (s,) in conn.execute("SELECT state FROM trials")]
    assert states.count("complete") == 8, states
    boards = _measured_by(out / "hwnas.db")
    assert set(boards.values()) == {"board-a", "board-b"}


def test_remote_profile_measures_through_the_seam(servers, tmp_path: Path) -> None:
    server = servers(name="board-a")
    profile = load_device(remote_profile(tmp_path, [server.url, _closed_port_url()]))
    assert profile.runtime == "remote" and len(profile.servers) == 2
    assert "2 boards" in profile.label
    from hwnas.hardware import availability, fingerprint

    state = availability(profile)
    assert state.usable and any("not reachable now" in n for n in state.notes)
    assert len(fingerprint(profile)) == 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        (m,) = measure_onnx_latencies(_models(1), profile, (3, 8, 8))
    assert m.env["board"] == "board-a" and m.env["fingerprint"] == fingerprint(profile)


def test_trials_fail_with_the_reason_when_the_last_board_dies(servers, tmp_path: Path) -> None:
    if not MACRO_JSON.is_file():
        pytest.skip(f"{MACRO_JSON} is not present")
    a = servers("--simulate-ms", "400", name="board-a")
    profile = remote_profile(tmp_path, [a.url], name="lonely", repeats=3)
    board_a = RemoteBoard(a.url, token=None)

    def kill_a_mid_measurement() -> None:
        while board_a.info()["measured"] < 1 or not board_a.health()["busy"]:
            pass
        a.kill()

    killer = threading.Thread(target=kill_a_mid_measurement)
    killer.start()
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        hwnas.api.search(
            space="macro",
            benchmark=MACRO_JSON,
            objectives=["mean_acc:max", "latency"],
            device=str(profile),
            budget=5,
            seed=0,
            out=out,
        )
    killer.join(timeout=60)
    with sqlite3.connect(out / "hwnas.db") as conn:
        rows = conn.execute("SELECT state, error FROM trials ORDER BY number").fetchall()
    states = [s for s, _ in rows]
    assert len(rows) == 5 and states[0] == "complete" and "failed" in states, rows
    for state, error in rows:
        if state == "failed":
            assert "no server of device 'lonely' is reachable" in error, error


def test_process_workers_keep_two_boards_busy(servers, tmp_path: Path) -> None:
    if not MACRO_JSON.is_file():
        pytest.skip(f"{MACRO_JSON} is not present")
    a = servers("--simulate-ms", "1000", name="board-a")
    b = servers("--simulate-ms", "1000", name="board-b")
    profile = remote_profile(tmp_path, [a.url, b.url], repeats=3)
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        hwnas.api.search(
            space="macro",
            benchmark=MACRO_JSON,
            objectives=["mean_acc:max", "latency"],
            device=str(profile),
            budget=6,
            seed=0,
            out=out,
            executor={"kind": "process", "workers": 2},
        )
    boards = _measured_by(out / "hwnas.db")
    assert len(boards) == 6 and set(boards.values()) == {"board-a", "board-b"}
    with sqlite3.connect(out / "hwnas.db") as conn:
        spans = dict(
            (n, (s, f)) for n, s, f in conn.execute("SELECT number, started, finished FROM trials")
        )
    on_a = [spans[t] for t, board in boards.items() if board == "board-a"]
    on_b = [spans[t] for t, board in boards.items() if board == "board-b"]
    # Evaluations on the two boards overlapped in time (each is dominated by its board's 1 s).
    assert any(s1 < f2 and s2 < f1 for s1, f1 in on_a for s2, f2 in on_b)
