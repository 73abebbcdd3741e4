"""Reading a run never needs its dataset: front, plot, export, lineage and report work on a
trained run whose image folder was deleted (and nothing tries the network)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fault_helpers import cli


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from PIL import Image
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("offline")
    folder = root / "digits"
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:200], digits.target[:200])):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = (image * 16).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / str(label) / f"{i}.png")
    run = root / "run"
    result = cli(
        "search", "--space", "chain", "--dataset", f"imagefolder:{folder}", "-o", "error",
        "-o", "params", "--budget", 2, "--epochs", 1, "--out", run,
    )  # fmt: skip
    assert result.code == 0, result.err
    shutil.rmtree(folder)  # the dataset is gone
    return run


@pytest.mark.usefixtures("one_thread")
def test_reading_commands_work_without_the_dataset(trained_run, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("a reading command tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    for command in (["front"], ["plot"], ["lineage", "knee"], ["report"], ["export"]):
        args = [command[0], trained_run, *command[1:]]
        result = cli(*args)
        assert result.code == 0, (command, result.err)
    record = json.loads((trained_run / "exports" / "knee.json").read_text())
    assert record["weights"]["source"] == "trained"
    assert "not available here" in record["data_note"]
    assert record["verification"]["passed"]
    assert (trained_run / "plots").is_dir() and (trained_run / "report.html").is_file()
