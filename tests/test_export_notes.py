"""Exports say what their numbers do not: untrained weights (table runs), a slower int8 file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import hwnas.api
from hwnas.cli import app
from hwnas.export.notes import int8_slower_note

TABLE = ["acc_cifar10:max", "lat_fpga_ms:min"]


def test_a_table_run_export_is_marked_untrained(tmp_path, nb201_csv):
    out = tmp_path / "run"
    hwnas.api.search(space="nb201", objectives=TABLE, benchmark=nb201_csv, budget=6, out=out)
    result = CliRunner().invoke(app, ["export", str(out), "--samples", "16"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ knee"))
    assert "UNTRAINED" in row and "passed" in row
    assert "UNTRAINED: freshly initialised weights" in result.output
    assert "train it before deploying" in result.output
    record = json.loads((out / "exports" / "knee.json").read_text())
    assert record["weights"]["source"] == "initialised"

    searched = CliRunner().invoke(app, [
        "search", "--space", "nb201", "--benchmark", str(nb201_csv), "--budget", "4",
        "-o", TABLE[0], "-o", TABLE[1], "--out", str(tmp_path / "b"), "--export", "knee",
    ])  # fmt: skip
    assert searched.exit_code == 0, searched.output
    assert "export knee: verified (UNTRAINED weights" in searched.output


def test_int8_slower_than_fp32_gets_a_comment():
    slower = {"fp32": {"value": 0.096, "unit": "ms"}, "int8": {"value": 0.115, "unit": "ms"}}
    note = int8_slower_note(slower)
    assert note and "slower than fp32" in note and "0.115 vs 0.096" in note
    faster = {"fp32": {"value": 0.2, "unit": "ms"}, "int8": {"value": 0.1, "unit": "ms"}}
    assert int8_slower_note(faster) is None
    assert int8_slower_note(None) is None
