"""The device server in a virtual environment holding only numpy and onnxruntime, as on a board.

The environment is made with ``python -m venv`` (no system site packages) and filled by pip
from the package index (or pip's cache); the server's files are the only hwnas files in it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from remote_helpers import REPO, start_server
from torch import nn

from hwnas.profilers.ort import export_onnx_bytes
from hwnas.remote.client import RemoteBoard

#: What a board needs of hwnas: the package marker, its errors and the remote package.
SERVER_FILES = ["hwnas/__init__.py", "hwnas/errors.py", "hwnas/remote"]


@pytest.mark.slow
def test_server_runs_with_only_numpy_and_onnxruntime(tmp_path: Path) -> None:
    venv = tmp_path / "board-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "-q", "numpy", "onnxruntime"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if pip.returncode != 0:
        pytest.skip(f"pip cannot install numpy and onnxruntime here: {pip.stderr[-300:]}")
    installed = subprocess.run(
        [python, "-c", "import torch"], capture_output=True, text=True, timeout=60
    )
    assert installed.returncode != 0  # really no torch on this "board"
    site = tmp_path / "board-site"
    for name in SERVER_FILES:
        source, target = REPO / name, site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    server = start_server(name="venv-board", python=python, pythonpath=site)
    try:
        board = RemoteBoard(server.url, token=None)
        torch.manual_seed(0)
        model = export_onnx_bytes(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).eval(), (3, 16, 16))
        answer = board.measure([model], {"warmup": 1, "repeats": 5, "input_shape": [3, 16, 16]})
        assert answer["results"][0]["stats"]["n"] == 5
        assert answer["env"]["board"] == "venv-board" and answer["env"]["onnxruntime"]
    finally:
        server.stop()
