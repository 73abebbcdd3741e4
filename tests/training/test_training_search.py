"""Searches that train on digits: real torch, real SQLite runs, through hwnas.search and the runner."""

import sqlite3

import pytest

import hwnas
from hwnas.config import RunConfig
from hwnas.evaluate.evaluator import Evaluator
from hwnas.evaluate.providers import build_providers
from hwnas.objectives.base import parse_objective
from hwnas.runner import Budget, run
from hwnas.search.base import Strategy
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.training.provider import TrainingProvider
from hwnas.training.weights import load_weights, save_weights
from hwnas.types import Candidate, TrialState

SMALL = {"stages": [[16, 1, 1], [32, 2, 1], [64, 2, 1]], "head_channels": 128}
QUICK = {"epochs": 1, "batch_size": 32, "train_device": "cpu"}
TRAINED = dict(
    space="mobilenet", space_options=SMALL, dataset="digits", objectives=["error", "params"]
)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_search_trains_candidates_and_keeps_their_weights(tmp_path):
    out = tmp_path / "run"
    result = hwnas.run_search(**TRAINED, strategy="random", budget=2, training=QUICK, out=out)
    assert [t.state for t in result.trials] == [TrialState.COMPLETE] * 2
    for t in result.trials:
        error = t.measurements["error"]
        # Chance is 90% on ten classes; one epoch gets these networks to 27-62% (seeds 0-2).
        assert error.unit == "%" and 0 <= error.value < 75
        assert error.env["dataset"] == "digits" and error.env["train_device"] == "cpu"
        assert error.env["epochs"] == 1 and error.env["seed"] == 0
        state, meta = load_weights(out / "weights" / f"trial-{t.number:05d}.safetensors")
        assert meta["genotype"] == t.genotype.to_json() and meta["epochs"] == 1
        assert meta["input_shape"] == [1, 16, 16] and "preprocessing" in meta
        assert state["head.classifier.weight"].shape == (10, 128)
    assert result.front.members
    # The held-out test split, for the final report only.
    provider = TrainingProvider.from_config(result.config, make_space("mobilenet", SMALL))
    test = provider.test(out / "weights" / "trial-00000.safetensors")
    assert test["test_error"].unit == "%" and test["test_error"].env["test_images"] == 359


def test_diverging_candidates_fail_with_the_reason_and_the_search_goes_on(tmp_path):
    out = tmp_path / "nan"
    training = {**QUICK, "lr": 1e30}  # SGD at this rate overflows within a few steps
    result = hwnas.run_search(**TRAINED, strategy="random", budget=3, training=training, out=out)
    assert [t.state for t in result.trials] == [TrialState.FAILED] * 3
    assert result.front.counts["failed"] == 3 and not result.front.members
    with sqlite3.connect(out / "hwnas.db") as db:
        errors = [row[0] for row in db.execute("SELECT error FROM trials ORDER BY number")]
    assert all(e.startswith("TrainingDiverged: training loss became nan") for e in errors)


class Scripted(Strategy):
    """Asks a fixed list of candidates, one at a time (the test's own strategy)."""

    name = "scripted"

    def __init__(self, *, candidates, **kwargs):
        super().__init__(**kwargs)
        self.todo = list(candidates)

    def ask(self, n):
        out, self.todo = self.todo[:n], self.todo[n:]
        return out

    def tell(self, trials):
        pass

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state, "todo": len(self.todo)}


def test_inheritance_failures_and_continuation_in_one_run(tmp_path):
    space = make_space("mobilenet", SMALL)
    a, b = space.parse("ir_k3_e1-ir_k3_e3-ir_k3_e1"), space.parse("ir_k5_e1-ir_k3_e3-ir_k3_e6")
    config = RunConfig(
        space="mobilenet", strategy="scripted", objectives=["error", "train_time"],
        space_options=SMALL, dataset="digits", training=QUICK,
    )  # fmt: skip
    objectives = [parse_objective("error"), parse_objective("train_time")]
    evaluator = Evaluator(build_providers(config, space), ["error", "train_time"])
    store = RunStore.create(tmp_path / "run", config.to_dict())
    # Trial 40 stands for a parent whose training blew up: its weights hold NaN.
    poisoned = space.build(a, num_classes=10, in_channels=1).state_dict()
    poisoned["stem.0.weight"].fill_(float("nan"))
    save_weights(tmp_path / "run" / "weights" / "trial-00040.safetensors", poisoned,
                 {"genotype": a.to_json(), "epochs": 0.5})  # fmt: skip
    strategy = Scripted(
        space=space,
        objectives=objectives,
        candidates=[
            Candidate(a),
            Candidate(a, parent=0, transfer={"kind": "continue"}, fidelity=2),
            Candidate(b, parent=0, transfer={"kind": "shape_match", "distill": 0.5}),
            Candidate(b, parent=40, transfer={"kind": "shape_match"}, fidelity=1.5),
            Candidate(b, parent=7, fidelity=3),  # trial 7 never ran: no weights
            Candidate(b, fidelity=0.5),
        ],
    )
    with store:
        run(store=store, strategy=strategy, evaluator=evaluator, objectives=objectives,
            constraints=[], budget=Budget(evaluations=6))  # fmt: skip
        trials = store.trials()
    states = [t.state for t in trials]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.FAILED] * 2 + [TrialState.COMPLETE]
    first, continued, inherited, nan, orphan, last = trials
    # "continue": one more epoch on top of the first, and its training time includes the first's.
    env = continued.measurements["error"].env
    assert env["epochs"] == 2 and env["epochs_this_trial"] == 1
    assert env["transfer"]["kind"] == "continue" and env["transfer"]["initialised"] == 0
    own = continued.measurements["train_time"].stats["this_trial"]
    assert continued.value("train_time") == pytest.approx(first.value("train_time") + own)
    # shape_match with distillation: some tensors copied, the changed ones initialised.
    transfer = inherited.measurements["error"].env["transfer"]
    assert transfer["kind"] == "shape_match" and transfer["copied"] > 0 < transfer["initialised"]
    assert nan.error.startswith("TrainingDiverged: training loss became nan")
    assert "parent trial 7 has no weights" in orphan.error
    # Half an epoch is well short of one, but clearly learns (63-78% at seeds 0-2; chance 90%).
    assert last.value("error") < 85


def test_successive_halving_search_continues_from_checkpoints(tmp_path):
    out = tmp_path / "sh"
    training = {**QUICK, "epochs": 0.9, "fidelity": "sh"}  # rungs of 0.1, 0.3 and 0.9 epochs
    result = hwnas.run_search(**TRAINED, strategy="random", budget=5, training=training, out=out)
    trials = result.trials
    assert all(t.state is TrialState.COMPLETE for t in trials)
    promoted = [t for t in trials if t.parent is not None]
    assert promoted and all(t.candidate.fidelity == 0.3 for t in promoted)
    for t in promoted:
        parent = trials[t.parent]
        assert parent.genotype == t.genotype and parent.candidate.fidelity == 0.1
        _, meta = load_weights(out / "weights" / f"trial-{t.number:05d}.safetensors")
        assert meta["epochs"] == 0.3
    # The front holds each genotype once, at its highest fidelity.
    keys = [m.genotype.key() for m in result.front.members]
    assert len(keys) == len(set(keys))
    stale = {t.parent for t in promoted}
    assert not stale & {m.number for m in result.front.members}
