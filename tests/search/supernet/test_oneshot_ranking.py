"""How far to trust a supernet's one-shot ranking: the figures, their meaning, and the line every
supernet run prints and stores (real tiny searches on digits through the command line)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau
from supernet_helpers import TINY
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.objectives.ranking import (
    chance_standard_error,
    kendall_tau,
    ranking_line,
    ranking_summary,
    tau_standard_error,
    top_k_overlap,
    trust_hint,
)
from hwnas.results import read_run
from hwnas.search.supernet.base import oneshot_accuracy
from hwnas.types import TrialState


# -- the figures ----------------------------------------------------------------------------
def test_kendall_tau_is_scipys_tau_b_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 6, size=15).astype(float)  # many ties
        b = a + rng.normal(0, 2, size=15).round()
        assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)


def test_chance_standard_error_is_the_spread_of_tau_between_unrelated_scorings():
    rng = np.random.default_rng(1)
    taus = [kendall_tau(rng.normal(size=30), rng.normal(size=30)) for _ in range(2000)]
    assert np.std(taus) == pytest.approx(chance_standard_error(30), rel=0.08)


def test_jackknife_standard_error_follows_the_spread_of_tau_over_samples():
    rng = np.random.default_rng(2)
    taus, errors = [], []
    for _ in range(300):
        x = rng.normal(size=30)
        y = 0.7 * x + 0.7 * rng.normal(size=30)  # tau about 0.5
        taus.append(kendall_tau(x, y))
        errors.append(tau_standard_error(x, y))
    assert 0.4 < np.mean(taus) < 0.6
    assert np.mean(errors) == pytest.approx(np.std(taus), rel=0.25)
    assert tau_standard_error([1, 2, 3, 4], [1, 2, 3, 4]) == 0.0  # every subset agrees fully


def test_summary_and_hint_in_words():
    summary = ranking_summary([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5], k=3)
    assert summary["n"] == 6 and summary["top_k"] == 3 and summary["top_k_overlap"] == 1.0
    assert summary["kendall_tau"] == pytest.approx(13 / 15, abs=1e-4)
    assert "strongly" in trust_hint(summary)
    assert "too few" in trust_hint({"n": 4, "kendall_tau": 1.0})
    assert "cannot be judged" in trust_hint({"n": 10, "kendall_tau": None})
    constant = ranking_summary([5.0] * 6, [1, 2, 3, 4, 5, 6])
    assert constant["kendall_tau"] is None and constant["top_k_overlap"] is None
    assert "Kendall tau n/a over n=6" in ranking_line(constant)
    # 0.3 over 10 is within chance (its chance standard error is 0.25); over 60 it is not.
    assert "no better than chance" in trust_hint({"n": 10, "kendall_tau": 0.3})
    assert "weakly" in trust_hint({"n": 60, "kendall_tau": 0.3})
    assert "moderately" in trust_hint({"n": 30, "kendall_tau": 0.5})
    assert "no better than chance" in trust_hint({"n": 30, "kendall_tau": -0.4})
    line = ranking_line({**summary, "basis": "trained alone"})
    assert line.startswith("one-shot ranking: Kendall tau 0.87 ± ")
    assert "top-3 overlap 3/3 over n=6 candidates (vs accuracy trained alone)" in line


# -- every supernet run: stored, printed, reported ------------------------------------------
CELL_RUN = [
    "--space", "nb201", "--space-option", "channels=4", "--space-option", "cells_per_stage=1",
    "--strategy-option", "epochs=2", "--strategy-option", "warmup_epochs=1",
]  # fmt: skip
MOBILE_RUN = [
    "--space", "mobilenet", "--space-option", f"stages={json.dumps(TINY['stages'])}",
    "--space-option", f"head_channels={TINY['head_channels']}",
    "--strategy-option", "epochs=2", "--strategy-option", "warmup_epochs=1",
]  # fmt: skip
CASES = {
    "darts-nb201": ["--strategy", "darts", *CELL_RUN, "--strategy-option", "lambdas=[0, 1]",
                    "--strategy-option", "samples_per_head=3", "--strategy-option", "theta_lr=0.2"],
    "enas-nb201": ["--strategy", "enas", *CELL_RUN, "--strategy-option", "candidates=6",
                       "--strategy-option", "controller_steps=3",
                       "--strategy-option", "rollouts=4", "--strategy-option", "finetune=true"],
}  # fmt: skip
#: What the trained accuracy is: stand-alone by default, fine-tuned with finetune=true.
BASIS = {"darts-nb201": "trained alone", "enas-nb201": "fine-tuned from the supernet"}


def _recomputed(run_dir: Path) -> dict:
    """The ranking figures recomputed here from the stored trials alone."""
    run = read_run(run_dir)
    pairs = [
        (oneshot_accuracy(t), 100.0 - t.value("error"))
        for t in run.trials
        if t.state is TrialState.COMPLETE
    ]
    assert pairs and all(o is not None for o, _ in pairs)
    oneshot, trained = (np.array(v, dtype=float) for v in zip(*pairs))
    return {
        "n": len(pairs),
        "tau": kendalltau(oneshot, trained).statistic,
        "overlap": top_k_overlap(oneshot, trained, 5),
        "se": tau_standard_error(oneshot, trained),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_supernet_run_stores_prints_and_reports_its_ranking(tmp_path, case):
    out = tmp_path / "run"
    args = [
        "search", *CASES[case], "--dataset", "digits", "--objective", "error",
        "--objective", "params", "--budget", "6", "--epochs", "0.3", "--batch-size", "32",
        "--data-fraction", "0.3", "--lr", "0.05", "--train-device", "cpu", "--seed", "0",
        "--no-progress", "--out", str(out),
    ]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    # Stored: the run's ranking equals the figures recomputed from its stored trials.
    run = read_run(out)
    stored = run.ranking
    assert stored is not None
    again = _recomputed(out)
    assert stored["n"] == again["n"] == 6
    assert stored["kendall_tau"] == pytest.approx(again["tau"], abs=1e-4)
    assert stored["tau_se"] == pytest.approx(again["se"], abs=1e-4)
    assert stored["top_k"] == 5 and stored["top_k_overlap"] == pytest.approx(again["overlap"])
    assert stored["basis"] == BASIS[case]
    # Printed: one line at the end of `hwnas search`, with the stored figures and a hint.
    lines = [x for x in done.output.splitlines() if x.startswith("one-shot ranking: ")]
    assert lines == [ranking_line(stored)]
    tau = stored["kendall_tau"]
    assert re.search(rf"Kendall tau {tau:.2f} ± \d\.\d\d, top-5 overlap \d/5 over n=6 ", lines[0])
    assert f"(vs accuracy {BASIS[case]}): " in lines[0]
    assert trust_hint(stored) in lines[0]
    # `hwnas front` and `hwnas resume` show it again from the stored run; the report too.
    for command in (["front", str(out)], ["resume", str(out), "--no-progress"]):
        shown = CliRunner().invoke(app, command)
        assert shown.exit_code == 0 and lines[0] in shown.output.splitlines(), shown.output
    reported = CliRunner().invoke(app, ["report", str(out)])
    assert reported.exit_code == 0, reported.output
    page = (out / "report.html").read_text()
    assert "<th>one-shot ranking</th>" in page and f"Kendall tau {tau:.2f}" in page


def test_runs_of_other_strategies_print_no_ranking(tmp_path):
    out = tmp_path / "run"
    args = [
        "search", "--space", "nb201", "--space-option", "channels=4",
        "--space-option", "cells_per_stage=1", "--strategy", "random", "--dataset", "digits",
        "--objective", "error", "--objective", "params", "--budget", "2", "--epochs", "0.1",
        "--batch-size", "32", "--data-fraction", "0.2", "--train-device", "cpu",
        "--no-progress", "--out", str(out),
    ]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "Pareto front" in done.output and "one-shot ranking" not in done.output
    assert read_run(out).ranking is None
