"""The enas strategy in real runs: shared weights, a controller, a front, SIGKILL and resume."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from supernet_helpers import TINY

from hwnas.api import search
from hwnas.errors import ConfigError
from hwnas.objectives.base import parse_objective
from hwnas.search import make_strategy
from hwnas.spaces import make_space
from hwnas.types import TrialState

QUICK = {"epochs": 0.3, "batch_size": 32, "data_fraction": 0.3, "lr": 0.05, "train_device": "cpu"}
CELL = {"channels": 4, "cells_per_stage": 1}


def _events(run_dir: Path, kind: str) -> list[dict]:
    with sqlite3.connect(run_dir / "hwnas.db") as db:
        rows = db.execute("SELECT data FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [json.loads(r[0]) for r in rows]


def test_enas_on_nb201_trains_shared_weights_and_hands_off_a_front(tmp_path, fast_cpu):
    out = tmp_path / "run"
    result = search(
        space="nb201", space_options=CELL, strategy="enas", dataset="digits",
        device=str(fast_cpu.source), objectives=["error", "latency", "params"], budget=6,
        training=QUICK, out=out,
        strategy_options={"epochs": 2, "warmup_epochs": 1, "controller_steps": 4, "rollouts": 4,
                          "update": "ppo", "candidates": 6, "finetune": True},
    )  # fmt: skip
    trials = result.trials
    assert len(trials) == 6 and all(t.state is TrialState.COMPLETE for t in trials)
    epochs = _events(out, "supernet_epoch")
    assert [e["phase"] for e in epochs] == ["warmup", "search"]
    assert epochs[0]["mean_reward"] is None and epochs[1]["mean_reward"] is not None
    # Latency is measured on the device, so the reward traded MACs in its place.
    assert _events(out, "enas_proxy") == [{"metrics": ["latency"], "proxy": "macs"}]
    (front,) = _events(out, "enas_front")
    assert front["pool"] >= 6 and len(front["candidates"]) == 6
    # A front, not a point: candidates of several preference vectors, several sizes.
    assert len({tuple(t.candidate.info["preference"]) for t in trials}) >= 2
    assert len({t.value("params") for t in trials}) >= 2
    for t in trials:
        transfer = t.candidate.transfer
        assert transfer["kind"] == "supernet" and (out / transfer["weights"]).is_file()
        assert t.measurements["error"].env["transfer"]["kind"] == "supernet"
        assert t.candidate.info["one_shot"]["params"] == t.value("params")


def _cli(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "hwnas.cli", "search", "--space", "mobilenet",
        "--space-option", f"stages={json.dumps(TINY['stages'])}",
        "--space-option", f"head_channels={TINY['head_channels']}",
        "--strategy", "enas", "--dataset", "digits", "--objective", "error",
        "--objective", "params", "--budget", "3", "--epochs", "0.2", "--batch-size", "32",
        "--data-fraction", "0.3", "--lr", "0.05", "--train-device", "cpu", "--seed", "1",
        "--strategy-option", "epochs=6", "--strategy-option", "warmup_epochs=1",
        "--strategy-option", "controller_steps=3", "--strategy-option", "rollouts=4",
        "--strategy-option", "candidates=3", "--no-progress", "--out", str(out), *extra,
    ]  # fmt: skip


def _latest_epoch(out: Path) -> int:
    latest = out / "strategy" / "supernet" / "latest.json"
    try:
        return int(json.loads(latest.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def test_enas_killed_by_sigkill_resumes_from_its_checkpoint(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while _latest_epoch(killed) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "no second supernet epoch in 240 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    at_kill = _latest_epoch(killed)
    assert 2 <= at_kill < 6, "the kill must land during the shared-weight training"
    assert not _events(killed, "enas_front")
    resumed = subprocess.run(
        [sys.executable, "-m", "hwnas.cli", "resume", str(killed), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert _events(killed, "supernet_resumed") == [{"epoch": at_kill}]
    later = [e["epoch"] for e in _events(killed, "supernet_epoch")]
    assert later[-(6 - at_kill) :] == list(range(at_kill + 1, 7))
    # The resumed search ends where an uninterrupted one does: same controller, same shared
    # weights, so the same candidates with the same one-shot scores.
    whole = tmp_path / "whole"
    done = subprocess.run(_cli(whole), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (front_resumed,) = _events(killed, "enas_front")
    (front_whole,) = _events(whole, "enas_front")
    assert front_resumed["candidates"] == front_whole["candidates"]
    with sqlite3.connect(killed / "hwnas.db") as db:
        states = [r[0] for r in db.execute("SELECT state FROM trials")]
    assert states == ["complete"] * 3


@pytest.mark.parametrize(
    ("space", "options", "message"),
    [
        ("macro", {}, "use --space mobilenet or --space nb201"),
        ("nb201", {"update": "a2c"}, "update must be one of reinforce, ppo"),
        ("nb201", {"rollouts": 1}, "rollouts must be a whole number >= 2"),
        ("nb201", {"reward": "best"}, "reward must be one of"),
    ],
)
def test_bad_spaces_and_options_are_config_errors(space, options, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy("enas", space=make_space(space), objectives=[parse_objective("error")],
                      options=options)  # fmt: skip


def test_the_hand_off_spreads_candidates_over_the_trade_off():
    from hwnas.search.rl.reward import RewardEngine, default_preferences

    objectives = [parse_objective("error"), parse_objective("params")]
    strategy = make_strategy("enas", space=make_space("nb201"), objectives=objectives,
                             options={"candidates": 4})  # fmt: skip
    strategy._engine = RewardEngine(kind="tchebycheff", objectives=objectives)
    # (error, params): a crowd of near-identical accurate large networks, and a few others.
    rows = np.array(
        [[10.0, 900], [10.1, 900], [10.2, 900], [10.3, 900], [30.0, 100], [20.0, 400],
         [15.0, 600], [50.0, 50]]
    )  # fmt: skip
    chosen = strategy._spread(rows, np.zeros(len(rows)), default_preferences(2))
    assert len(chosen) == 4 == len(set(chosen))
    # The most accurate and the cheapest are both chosen, and no cost value twice.
    assert 0 in chosen and 7 in chosen
    assert len({rows[i, 1] for i in chosen}) == 4
