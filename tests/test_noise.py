"""Measurement noise on the front: p10/p90 in the front files and table, members within noise
of each other, trials the noise cannot rank below the front, and a warning with advice."""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

from rich.console import Console

from hwnas.cli.fronts import print_front
from hwnas.objectives.base import parse_objective
from hwnas.objectives.noise import interval, noise_report, surely_dominates, within_noise
from hwnas.results import compute_front, write_front
from hwnas.types import Candidate, Genotype, Measurement, Trial, TrialState

OBJECTIVES = [parse_objective("error:min"), parse_objective("latency:min")]
WARNING = "spread too wide to trust: robust CV 12%"


def _trial(n: int, error: float, latency: float, spread: float, noisy: bool = False) -> Trial:
    stats = {"median": latency, "p10": latency - spread, "p90": latency + spread, "n": 30.0}
    env = {"warning": WARNING} if noisy else {}
    measurements = {
        "error": Measurement("error", error, "%"),
        "latency": Measurement("latency", latency, "ms", device="cpu", stats=stats, env=env),
    }
    genotype = Genotype("nb201", f"arch-{n}")
    return Trial(n, Candidate(genotype), TrialState.COMPLETE, measurements)


def test_within_noise_and_sure_dominance():
    a, b = _trial(0, 2.0, 1.00, 0.2), _trial(1, 3.0, 0.90, 0.2)  # latency intervals overlap
    c = _trial(2, 4.0, 0.40, 0.05)  # far faster than both
    assert interval(a, "latency") == (0.8, 1.2) and interval(a, "error") is None
    assert within_noise(a, b, OBJECTIVES) and not within_noise(a, c, OBJECTIVES)
    # d is dominated by a on the median but only within a's spread: not surely dominated.
    d = _trial(3, 2.5, 1.05, 0.2)
    assert not surely_dominates(a, d, OBJECTIVES)
    assert surely_dominates(a, _trial(4, 2.5, 2.0, 0.1), OBJECTIVES)
    report = noise_report([a, b, c], [d], OBJECTIVES)
    assert report.ties == {0: [1], 1: [0], 2: []} and report.near_front == [3]


def test_front_files_and_console_show_the_spread_and_the_ties(tmp_path):
    trials = [
        _trial(0, 2.0, 1.00, 0.2, noisy=True),
        _trial(1, 3.0, 0.90, 0.2, noisy=True),
        _trial(2, 4.0, 0.40, 0.05),
        _trial(3, 2.5, 1.05, 0.2, noisy=True),
    ]
    front = compute_front(trials, OBJECTIVES, units={"error": "%", "latency": "ms"})
    assert [t.number for t in front.members] == [0, 1, 2]
    write_front(tmp_path, front)
    rows = list(csv.DictReader((tmp_path / "front.csv").open()))
    assert list(rows[0]) == ["trial", "genotype", "error", "latency", "latency_p10", "latency_p90"]
    assert float(rows[0]["latency_p10"]) == 0.8 and float(rows[0]["latency_p90"]) == 1.2
    data = json.loads((tmp_path / "front.json").read_text())
    assert data["members"][0]["intervals"]["latency"] == {"p10": 0.8, "p90": 1.2}
    assert data["members"][0]["within_noise_of"] == [1]
    assert data["noise"]["near_front"] == [3] and data["noise"]["noisy_trials"] == [0, 1, 3]

    out = io.StringIO()
    result = SimpleNamespace(run_dir=tmp_path, front=front, outcome=None, config=None)
    print_front(Console(file=out, width=200), result)
    text = out.getvalue()
    assert "latency (min, ms) [p10, p90]" in text and "1 [0.8, 1.2]" in text
    assert "within noise of" in text
    assert "trial 3 is off the front only by margins inside the measurement noise" in text
    assert "warning: measurements too noisy to rank" in text and "quiet machine" in text


def test_quiet_measurements_get_no_warning(tmp_path):
    trials = [_trial(0, 2.0, 1.0, 0.01), _trial(1, 3.0, 0.5, 0.01), _trial(2, 4.0, 0.2, 0.01)]
    front = compute_front(trials, OBJECTIVES)
    out = io.StringIO()
    result = SimpleNamespace(run_dir=tmp_path, front=front, outcome=None, config=None)
    print_front(Console(file=out, width=200), result)
    assert "warning" not in out.getvalue() and "within noise of" not in out.getvalue()
