"""One hypervolume: the same figure, by the same name, from the search's console and progress
lines, front.json, `hwnas front`, the plot and the report; always in [0, 1]."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from hwnas.objectives.pareto import HV_NAME
from hwnas.plot.data import load_run
from hwnas.plot.render import render_plots
from hwnas.report.page import write_report

FIGURE = re.compile(HV_NAME + r" ([01]\.\d{4})")


def _cli(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "hwnas.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_one_run_one_hypervolume_figure(tmp_path, nb201_csv):
    out = tmp_path / "run"
    searched = _cli(
        "search", "--space", "nb201", "--benchmark", str(nb201_csv), "--strategy", "nsga2",
        "-o", "acc_cifar10:max", "-o", "lat_fpga_ms:min", "--budget", "60", "--out", str(out),
    )  # fmt: skip
    figures = FIGURE.findall(searched)
    # The last progress line (all trials) and the front's header say the same.
    progress = [f for line in searched.splitlines() if line.startswith("progress 60/60")
                for f in FIGURE.findall(line)]  # fmt: skip
    front_line = next(line for line in searched.splitlines() if line.startswith("Pareto front:"))
    console = FIGURE.search(front_line).group(1)
    assert progress == [console] and figures

    stored = json.loads((out / "front.json").read_text())["hypervolume"]
    assert stored["name"] == HV_NAME and 0 <= stored["value"] <= 1
    assert f"{stored['value']:.4f}" == console
    assert stored["reference"] == 1.1 and "divided by" in stored["definition"]

    again = FIGURE.search(_cli("front", str(out))).group(1)
    assert again == console

    plots = {p.name: p for p in render_plots([load_run(out)])}
    legend = plots["hypervolume"].figure.axes[0].get_legend().get_texts()[0].get_text()
    assert legend.endswith(f": {console}")
    assert plots["hypervolume"].figure.axes[0].get_ylabel().startswith(HV_NAME)

    report = write_report(out).read_text()
    assert f"<th>{HV_NAME}</th><td>{console} (" in report
