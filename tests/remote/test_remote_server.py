"""The device server: its imports, its protocol and limits, and agreement with local timing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import torch
from remote_helpers import REPO, remote_profile
from torch import nn

from hwnas.devices import load_device
from hwnas.errors import DeviceError
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.ort import export_onnx_bytes, measure_onnx_latencies
from hwnas.remote.client import BoardBusy, BoardRejected, RemoteBoard
from hwnas.remote.pool import BoardPool
from hwnas.remote.protocol import MAGIC, decode_request, encode_request
from hwnas.remote.server import ServerSettings, make_server

SETTINGS = {"warmup": 2, "repeats": 5, "clock": "thread", "input_shape": [3, 16, 16]}


def _net(width: int, depth: int = 2) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval()


def _onnx(width: int, shape: tuple[int, int, int] = (3, 16, 16), depth: int = 2) -> bytes:
    return export_onnx_bytes(_net(width, depth), shape)


def test_import_closure_is_stdlib_numpy_onnxruntime() -> None:
    # The board has numpy and onnxruntime only: the server must not pull torch, typer, scipy
    # or any hwnas module outside hwnas.remote (bar the tiny hwnas, _version and errors).
    code = (
        "import sys, json; import numpy, onnxruntime; third = set(sys.modules); "
        "import hwnas.remote.server; print(json.dumps(sorted(set(sys.modules) - third)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    added = json.loads(out.stdout)
    outside = [
        m
        for m in added
        if m.split(".")[0] not in sys.stdlib_module_names
        and not (m in ("hwnas", "hwnas._version", "hwnas.errors") or m.startswith("hwnas.remote"))
    ]
    assert outside == []
    assert "torch" not in added and "hwnas.devices" not in added


def test_protocol_round_trip_and_rejections() -> None:
    body = encode_request([b"abc", b"de"], {"threads": 2, "input_shape": [3, 8, 8]})
    settings, models = decode_request(body)
    assert models == [b"abc", b"de"] and settings["threads"] == 2
    assert settings["repeats"] == 30  # defaults filled in
    with pytest.raises(ValueError, match="magic"):
        decode_request(b"\x80\x04pickle")
    with pytest.raises(ValueError, match="protocol 2"):
        decode_request(MAGIC + b'{"protocol": 2, "sizes": [0]}\n')
    with pytest.raises(ValueError, match="header says"):
        decode_request(body[:-1])


def test_token_is_required_off_loopback() -> None:
    settings = ServerSettings(token=None, name="x")
    with pytest.raises(ValueError, match="needs a token"):
        make_server("0.0.0.0", 0, settings)
    server = make_server("127.0.0.1", 0, settings)  # loopback: no token needed
    server.server_close()


def test_health_info_and_errors(servers) -> None:
    server = servers("--max-model-mb", "0.05", token="s3cret")
    good = RemoteBoard(server.url, token="s3cret")
    assert good.health()["protocol"] == 1
    info = good.info()
    assert info["board"] == "board-a" and info["onnxruntime"]
    assert "CPUExecutionProvider" in info["available_providers"]
    with pytest.raises(BoardRejected, match="rejected the token"):
        RemoteBoard(server.url, token="wrong").info()
    with pytest.raises(BoardRejected, match="rejected the token"):
        RemoteBoard(server.url, token=None).measure([_onnx(4)], SETTINGS)
    with pytest.raises(BoardRejected, match="not an ONNX model"):
        good.measure([b"\x80\x04\x95 this is a pickle, not onnx"], SETTINGS)
    big = _onnx(64, depth=4)
    assert len(big) > 0.05 * 2**20
    with pytest.raises(BoardRejected, match="more than this server's limit"):
        good.measure([big], SETTINGS)
    # The pool refuses before sending, with the same one line.
    pool = BoardPool(urls=[server.url], token="s3cret", name="b")
    with pytest.raises(DeviceError, match="larger --max-model-mb"):
        pool.measure([big], SETTINGS)
    answer = good.measure([_onnx(4)], SETTINGS)
    assert answer["results"][0]["stats"]["n"] == 5 and answer["env"]["board"] == "board-a"


def test_run_time_limit(servers) -> None:
    server = servers("--max-seconds", "0.001")
    with pytest.raises(BoardRejected, match="limit"):
        RemoteBoard(server.url, token=None).measure([_onnx(32)], {**SETTINGS, "repeats": 500})


def test_one_measurement_at_a_time(servers) -> None:
    server = servers("--simulate-ms", "1500")
    board = RemoteBoard(server.url, token=None)
    started = threading.Event()
    done: list[dict] = []

    def first() -> None:
        started.set()
        done.append(board.measure([_onnx(4)], SETTINGS))

    thread = threading.Thread(target=first)
    thread.start()
    started.wait()
    # Wait until the server reports the first request holding the lock (no racing sleep).
    while not board.health()["busy"]:
        assert thread.is_alive()
    with pytest.raises(BoardBusy):
        board.measure([_onnx(4)], SETTINGS)
    thread.join()
    assert done and done[0]["results"][0]["stats"]["n"] == 5


def test_remote_agrees_with_local_onnxruntime(servers, tmp_path) -> None:
    server = servers(name="loopback-board")
    remote = load_device(remote_profile(tmp_path, [server.url], repeats=40))
    local_path = tmp_path / "local.toml"
    local_path.write_text(
        'runtime = "onnxruntime"\nthreads = 1\nwarmup = 2\nrepeats = 40\nclock = "thread"\n'
    )
    local = load_device(local_path)
    models = [_onnx(w, (3, 32, 32)) for w in (4, 24, 96)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        here = measure_onnx_latencies(models, local, (3, 32, 32))
        there = measure_onnx_latencies(models, remote, (3, 32, 32))
    ratios = [t.value / h.value for t, h in zip(there, here)]
    assert all(0.6 < r < 1.6 for r in ratios), ratios
    assert np.argsort([m.value for m in here]).tolist() == [0, 1, 2]
    assert np.argsort([m.value for m in there]).tolist() == [0, 1, 2]
    m = there[0]
    assert {"median", "p10", "p90", "cv", "rcv", "n"} <= set(m.stats)
    assert m.env["board"] == "loopback-board" and m.env["server"] == server.url
    assert m.env["onnxruntime"] and m.env["cpu"] and m.env["runtime"] == "remote"
    assert m.env["input_shape"] == [3, 32, 32] and m.unit == "ms"
