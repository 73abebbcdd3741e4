"""Remote devices at the command line: one clear line and exit 2 for every failure, nothing
half-written; profile, latency table, calibration and the export's latency check through a
board; a search killed and resumed on a remote device."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from remote_helpers import MACRO_JSON, REPO, remote_profile
from typer.testing import CliRunner

from hwnas.cli import app

STAGES = ["--space-option", "stages=[[16,1,1],[24,2,1]]"]
GENOTYPE = "macro:02012100"


def _invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def _one_line_error(result, words: str) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert words in lines[0], lines[0]
    return lines[0]


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _search_args(profile: Path, out: Path, budget: int = 4) -> list[str]:
    return [
        "search", "--space", "macro", "--benchmark", str(MACRO_JSON),
        "--objective", "mean_acc:max", "--objective", "latency:min",
        "--device", str(profile), "--budget", str(budget), "--seed", "0", "--out", str(out),
    ]  # fmt: skip


@pytest.fixture
def macro_json() -> Path:
    if not MACRO_JSON.is_file():
        pytest.skip(f"{MACRO_JSON} is not present")
    return MACRO_JSON


def test_unreachable_server(tmp_path: Path, macro_json) -> None:
    profile = remote_profile(tmp_path, [_closed_port_url()])
    out = tmp_path / "run"
    _one_line_error(_invoke(*_search_args(profile, out)), "no server of device 'board'")
    assert not out.exists()
    _one_line_error(_invoke("profile", GENOTYPE, "--device", str(profile)), "is reachable")


def test_wrong_token(servers, tmp_path: Path, macro_json) -> None:
    server = servers(token="right-token")
    profile = remote_profile(tmp_path, [server.url])
    out = tmp_path / "run"
    env = {"HWNAS_DEVICE_TOKEN": "wrong-token"}
    line = _one_line_error(_invoke(*_search_args(profile, out), env=env), "rejected the token")
    assert "HWNAS_DEVICE_TOKEN" in line
    assert not out.exists()
    # The right token, from another variable the profile names.
    named = remote_profile(tmp_path, [server.url], name="named", extra='token_env = "MY_TOKEN"\n')
    result = _invoke("profile", GENOTYPE, "--device", str(named), "-m", "latency", "--json",
                     env={"MY_TOKEN": "right-token"})  # fmt: skip
    assert result.exit_code == 0, result.output
    latency = json.loads(result.stdout)["measurements"]["latency"]
    assert latency["env"]["board"] == "board-a" and latency["unit"] == "ms"


def test_oversized_and_non_onnx_models(servers, tmp_path: Path) -> None:
    server = servers("--max-model-mb", "0.01")
    profile = remote_profile(tmp_path, [server.url])
    _one_line_error(
        _invoke("profile", GENOTYPE, "--device", str(profile), "-m", "latency"),
        "larger --max-model-mb",
    )
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x80\x04\x95 a pickle is not an onnx model")
    _one_line_error(
        _invoke("profile", str(junk), "--device", str(profile), "-m", "latency"),
        "is not a readable ONNX model",
    )
    junk.write_bytes(b"")  # onnx reads an empty model here; the board's onnxruntime refuses it
    _one_line_error(
        _invoke("profile", str(junk), "--device", str(profile), "-m", "latency"),
        "not an ONNX model onnxruntime can load",
    )


def test_lut_and_calibrate_through_a_remote_profile(servers, tmp_path: Path) -> None:
    a, b = servers(name="board-a"), servers(name="board-b")
    profile = remote_profile(tmp_path, [a.url, b.url], repeats=3)
    out = tmp_path / "table.json"
    result = _invoke(
        "devices", "lut", "--device", str(profile), "--space", "mobilenet", *STAGES,
        "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    assert table["device"] == "board" and len(table["entries"]) == 9 + 8 + 3
    assert table["env"]["runtime"] == "remote" and table["env"]["board"] in ("board-a", "board-b")
    result = _invoke(
        "devices", "calibrate", "--device", str(profile), "--space", "mobilenet", *STAGES,
        "--samples", "12", "--repeats", "3", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fidelity on 3 held-out architectures" in result.stdout


def test_export_latency_check_through_a_remote_profile(servers, tmp_path: Path) -> None:
    import torch
    from torch import nn

    from hwnas.export.exporter import _latency
    from hwnas.export.source import onnx_profile
    from hwnas.profilers.ort import export_onnx_bytes

    server = servers(name="board-a")
    profile, note = onnx_profile(str(remote_profile(tmp_path, [server.url])), given=True)
    assert profile.runtime == "remote" and note is None
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).eval()
    data = export_onnx_bytes(model, (3, 16, 16), dynamic_batch=True)
    record = _latency(data, None, profile, (3, 16, 16), None, None)
    assert record["onnx"] is not None and record["onnx"]["device"] == "board", record


def _complete(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials WHERE state='complete'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_search_killed_and_resumed_on_a_remote_device(servers, tmp_path: Path, macro_json) -> None:
    server = servers("--simulate-ms", "200", name="board-a")
    profile = remote_profile(tmp_path, [server.url], repeats=3)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "hwnas.cli", *_search_args(profile, out, budget=8)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while _complete(out / "hwnas.db") < 2:  # killed after some trials, before the budget
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    before = _complete(out / "hwnas.db")
    assert 2 <= before < 8
    resumed = subprocess.run(
        [sys.executable, "-m", "hwnas.cli", "resume", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(out / "hwnas.db") as conn:
        total, distinct, done = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT key), SUM(state='complete') FROM trials"
        ).fetchone()
        boards = {
            json.loads(env_)["board"]
            for (env_,) in conn.execute("SELECT env FROM measurements WHERE metric='latency'")
        }
    assert total == distinct == done == 8
    assert boards == {"board-a"}


def test_calibrate_by_transfer_on_a_board_then_search(servers, tmp_path: Path) -> None:
    nb201 = MACRO_JSON.parent / "nb201_cifar10_hw.csv"
    if not nb201.is_file():
        pytest.skip(f"{nb201} is not present")
    server = servers(name="board-a")
    profile = remote_profile(tmp_path, [server.url], name="myboard", repeats=3)
    out = tmp_path / "nb201_myboard.csv"
    result = _invoke(
        "devices", "calibrate", "--device", str(profile), "--space", "nb201",
        "--samples", "6", "--transfer-from", str(nb201), "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cross-validation over its 6 measurements" in result.stdout
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["column"] == "lat_myboard_ms" and len(record["samples"]) == 6
    assert {s["board"] for s in record["samples"]} == {"board-a"}
    assert {"within_10", "kendall_tau", "mape"} <= set(record["fidelity"]["predictor"])
    assert record["fidelity"]["denoised"] is True
    header = out.read_text().splitlines()[0].split(",")
    assert header[0] == "arch_str" and header[-1] == "lat_myboard_ms"
    assert len(out.read_text().splitlines()) == 15625 + 1
    # The predicted table is a benchmark: search on accuracy against the board's latency.
    run = tmp_path / "run"
    result = _invoke(
        "search", "--space", "nb201", "--benchmark", str(out),
        "--objective", "acc_cifar10:max", "--objective", "lat_myboard_ms:min",
        "--budget", "20", "--out", str(run),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
