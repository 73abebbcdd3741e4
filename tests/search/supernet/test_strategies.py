"""The supernet strategies in real runs: one supernet training, a front, resume, clear errors."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from supernet_helpers import DIGITS, TINY, build_table

import hwnas
from hwnas.api import resume
from hwnas.devices import load_device
from hwnas.errors import ConfigError
from hwnas.objectives.base import parse_objective
from hwnas.profilers.lut import table_path
from hwnas.search import make_strategy, strategy_parameters
from hwnas.search.base import StrategyResources
from hwnas.spaces import make_space
from hwnas.types import TrialState

#: Two wide layers: the first may skip (16 -> 16), the second halves the resolution.
WIDE = {"stages": [[16, 1, 1], [32, 2, 1]], "head_channels": 64}

QUICK = {"epochs": 1, "batch_size": 32, "data_fraction": 0.3, "lr": 0.05, "train_device": "cpu"}
SUPERNET = {"epochs": 2, "warmup_epochs": 1, "theta_lr": 0.2, "paths": "two"}


def _events(run_dir, kind):
    with sqlite3.connect(run_dir / "hwnas.db") as db:
        rows = db.execute("SELECT data FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [json.loads(r[0]) for r in rows]


@pytest.mark.slow
def test_fbnet_search_on_digits_gives_a_front_from_one_supernet(tmp_path):
    # The `cpu` device's lookup table (what `hwnas devices lut --device cpu` writes): the
    # supernet's latency cost, and the candidates' latency (--latency lut).
    space = make_space("mobilenet", WIDE)
    profile = load_device("cpu")
    lookup = {"num_classes": 10, "input_shape": DIGITS}
    build_table(space, profile).save(table_path(profile, space, **lookup))
    out = tmp_path / "run"
    # Error, latency and parameters: on digits, proxy errors after half an epoch are too
    # noisy for a reliable front of five on error and latency alone (see docs/supernet.md).
    result = hwnas.run_search(
        space="mobilenet", space_options=WIDE, strategy="fbnet", dataset="digits",
        device="cpu", objectives=["error", "latency", "params"], budget=15,
        training={**QUICK, "epochs": 0.5, "data_fraction": 1.0},
        strategy_options={**SUPERNET, "samples_per_head": 3, "finetune": True},
        profiling={"latency": "lut"},
        out=out,
    )  # fmt: skip
    trials = result.trials
    assert len(trials) == 15 and all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.genotype for t in trials}) == 15
    assert len(result.front.members) >= 5
    # One supernet training: two epochs logged once, a lookup table built for it.
    epochs = _events(out, "supernet_epoch")
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[0]["phase"] == "warmup"
    assert not _events(out, "lut_built")  # the cached table was used
    (front_event,) = _events(out, "supernet_front")
    assert len(front_event["candidates"]) >= 15
    # One candidate per cost band (handoff=bands): they span the cost range, each drawn from
    # a head's distribution tilted towards its band.
    assert {t.candidate.info["tradeoff"] for t in trials} <= {0.0, 0.3, 0.6, 1.2, 2.4}
    fractions = [t.candidate.info["cost_fraction"] for t in trials]
    assert min(fractions) < 0.2 and max(fractions) > 0.8
    # Each candidate was fine-tuned from its own cut of the supernet, inside the run.
    for t in trials:
        transfer = t.candidate.transfer
        assert transfer["kind"] == "supernet" and transfer["weights"].startswith("strategy/")
        assert (out / transfer["weights"]).is_file()
        assert t.measurements["error"].env["transfer"]["kind"] == "supernet"
        assert t.measurements["latency"].unit == "ms"
    assert (out / "strategy" / "supernet" / "latest.json").is_file()
    assert (out / "front.csv").is_file()


def test_a_search_killed_during_supernet_training_resumes_from_the_checkpoint(
    tmp_path, fast_cpu, _private_cache
):
    out = tmp_path / "run"
    # No lookup table yet: the strategy builds the device's table for its latency cost.
    config = dict(
        space="mobilenet", strategy="darts", objectives=["error", "latency"], budget=4,
        space_options=TINY, dataset="digits", device=str(fast_cpu.source), training=QUICK,
        strategy_options={**SUPERNET, "epochs": 4, "lambdas": [0.0, 3.0], "finetune": False,
                          "handoff": "pareto"},
    )  # fmt: skip
    script = (
        "import json, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "import hwnas\n"
        "hwnas.run_search(out=sys.argv[1], **json.loads(sys.argv[2]))\n"
    )
    env = {**os.environ, "HWNAS_CACHE_DIR": str(_private_cache)}
    search = subprocess.Popen([sys.executable, "-c", script, str(out), json.dumps(config)], env=env)
    latest = out / "strategy" / "supernet" / "latest.json"
    try:
        # Kill (SIGKILL: no cleanup of any kind) as soon as the first epoch's checkpoint is in.
        deadline = time.monotonic() + 600
        while not (latest.is_file() and json.loads(latest.read_text()).get("epoch", 0) >= 1):
            assert search.poll() is None, "the search ended before its first checkpoint"
            assert time.monotonic() < deadline, "no supernet checkpoint after 10 minutes"
            time.sleep(0.05)
        assert search.poll() is None, "the search finished before it could be killed"
        search.send_signal(signal.SIGKILL)
    finally:
        search.kill()
        search.wait()
    saved = json.loads(latest.read_text())["epoch"]
    assert 1 <= saved < 4
    result = resume(out)
    assert [t.state for t in result.trials] == [TrialState.COMPLETE] * 4
    assert _events(out, "supernet_resumed") == [{"epoch": saved}]
    # The resumed session trained only the epochs after the checkpoint.
    resumed_epochs = [e["epoch"] for e in _events(out, "supernet_epoch")]
    assert resumed_epochs[-(4 - saved) :] == list(range(saved + 1, 5))
    # Trained from scratch (finetune=false): no transfer.
    assert all(t.candidate.transfer is None for t in result.trials)
    # The killed session built the device's table; the resumed one used it.
    lookup = {"num_classes": 10, "input_shape": DIGITS}
    assert table_path(fast_cpu, make_space("mobilenet", TINY), **lookup).is_file()
    # The lambda=3 head's distribution expects a faster network (by the table) than the
    # cost-blind head's.
    heads = _events(out, "supernet_epoch")[-1]["heads"]
    assert [h["tradeoff"] for h in heads] == [0.0, 3.0]
    assert heads[1]["expected_cost"] < heads[0]["expected_cost"]
    assert {t.candidate.info["head"] for t in result.trials} == {0, 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"paths": "three"}, "paths must be one of full, two, one"),
        ({"betas": []}, "betas must be a non-empty list"),
        ({"cost": "energy"}, "cost must be one or more of latency, macs"),
        ({"epochs": 0}, "epochs must be a whole number >= 1"),
        ({"finetune": "yes"}, "finetune and build_lut must be true or false"),
        ({"handoff": "random"}, "handoff must be bands"),
        # Options are listed along the class chain: fbnet's own, then the supernet's.
        ({"lambdas": [1.0]}, "has no option lambdas; its options are: alpha, betas, epochs"),
    ],
)
def test_bad_options_are_config_errors(options, message):
    space = make_space("mobilenet", TINY)
    with pytest.raises(ConfigError, match=message):
        make_strategy("fbnet", space=space, objectives=[parse_objective("error")], options=options)


def test_each_strategy_takes_its_own_options_and_the_supernets():
    space = make_space("nb201", {"channels": 4, "cells_per_stage": 1})
    objectives = [parse_objective("error")]
    darts = make_strategy("darts", space=space, objectives=objectives, seed=3,
                          options={"lambdas": [0.0, 2.0], "paths": "two", "finetune": True})  # fmt: skip
    assert (darts.lambdas, darts.paths, darts.finetune, darts.seed) == ([0.0, 2.0], "two", True, 3)
    # The defaults: candidates trained alone, one path per weight step, one head per theta step.
    fbnet = make_strategy("fbnet", space=space, objectives=objectives)
    assert (fbnet.finetune, fbnet.paths, fbnet.theta_heads) == (False, "one", "rotate")
    assert not make_strategy("enas", space=space, objectives=objectives).finetune
    assert "robust" in strategy_parameters(type(darts))
    assert "robust" not in strategy_parameters(type(fbnet))


def test_other_spaces_and_runs_without_a_dataset_are_refused_with_a_hint(tmp_path):
    with pytest.raises(ConfigError, match="needs --space mobilenet or nb201"):
        make_strategy("snas", space=make_space("macro"), objectives=[parse_objective("error")])
    space = make_space("mobilenet", TINY)
    strategy = make_strategy("squeezenas", space=space, objectives=[parse_objective("macs")])
    with pytest.raises(ConfigError, match="needs a run"):
        strategy.ask(1)
    strategy.bind(StrategyResources(checkpoint_dir=tmp_path / "strategy"))
    with pytest.raises(ConfigError, match="needs a dataset"):
        strategy.ask(1)


def test_transfer_weights_must_stay_inside_the_run(tmp_path, digits):
    from hwnas.evaluate.base import EvalContext
    from hwnas.training.provider import TrainingProvider
    from hwnas.training.settings import TrainSettings
    from hwnas.types import Candidate

    space = make_space("mobilenet", TINY)
    provider = TrainingProvider(space=space, dataset="digits", settings=TrainSettings(epochs=0.1),
                                train_device="cpu")  # fmt: skip
    genotype = space.sample(__import__("numpy").random.default_rng(0))
    ctx = EvalContext(run_dir=tmp_path / "run", trial=0)
    for outside in ("../secret.safetensors", str(tmp_path / "abs.safetensors")):
        candidate = Candidate(genotype, transfer={"kind": "supernet", "weights": outside})
        with pytest.raises(ConfigError, match="inside the run directory"):
            provider.evaluate(candidate, ["error"], ctx)
