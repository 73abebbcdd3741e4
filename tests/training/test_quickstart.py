"""The README's training quickstart, exactly as written, as a user runs it (a subprocess)."""

import csv
import json
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

# As in the README (the test adds only --out, to write into its temporary directory).
QUICKSTART = shlex.split(
    "search --device cpu --dataset digits --space mobilenet --strategy random --budget 12"
)


def _hwnas() -> list[str]:
    script = Path(sys.executable).with_name("hwnas")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hwnas.cli"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_trains_twelve_candidates_offline(tmp_path):
    out = tmp_path / "runs" / "quick"
    started = time.monotonic()
    done = subprocess.run(
        [*_hwnas(), *QUICKSTART, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    print(f"quickstart took {elapsed:.0f} s")  # the issue asks for < 5 min on 2 quiet cores
    assert "12 complete, 0 failed" in done.stdout
    rows = list(csv.DictReader((out / "front.csv").open()))
    assert rows and list(rows[0]) == [
        "trial", "genotype", "error", "latency", "params", "latency_p10", "latency_p90"
    ]  # fmt: skip
    # The default `cpu` device times the deployed file: ONNX in onnxruntime, with its spread.
    assert all(
        float(r["latency_p10"]) <= float(r["latency"]) <= float(r["latency_p90"]) for r in rows
    )
    # Without a terminal the search still reports progress, in plain lines.
    assert "progress 12/12 (100%)" in done.stdout and "ETA" in done.stdout
    assert all(float(r["error"]) < 50 for r in rows), "digits is easy: the front must learn"
    assert len(list((out / "weights").glob("trial-*.safetensors"))) == 12
    with sqlite3.connect(out / "hwnas.db") as db:
        units = dict(db.execute("SELECT DISTINCT metric, unit FROM measurements"))
    assert units == {"error": "%", "latency": "ms", "params": "count"}
    with sqlite3.connect(out / "hwnas.db") as db:
        envs = [
            json.loads(r[0])
            for r in db.execute("SELECT env FROM measurements WHERE metric = 'latency'")
        ]
    assert envs and all(e.get("runtime") == "onnxruntime" for e in envs), envs[:1]
