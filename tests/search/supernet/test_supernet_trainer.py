"""Supernet training: the latency weight moves the architectures; checkpoints resume exactly."""

import numpy as np
import pytest
import torch
from supernet_helpers import TINY, build_table, classification_task

from hwnas.errors import RunError
from hwnas.search.supernet.costs import CostSet, counted_terms, latency_term
from hwnas.search.supernet.losses import FBNetLoss, PenaltyLoss
from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer
from hwnas.spaces.mobilenet import MobileNetSpace


def test_higher_latency_weight_samples_lower_latency_architectures(digits, fast_cpu):
    space = MobileNetSpace(**TINY)
    table = build_table(space, fast_cpu)
    task = classification_task(space, digits, batch_size=16, data_fraction=0.25)
    term = latency_term(table)
    trainer = SupernetTrainer(
        task=task,
        costs=CostSet([term]),
        heads=[FBNetLoss(alpha=0.2, beta=0.0), FBNetLoss(alpha=0.2, beta=3.0)],
        settings=SupernetSettings(epochs=4, warmup_epochs=1, theta_lr=0.2, paths="two", seed=0),
    )
    trainer.train()
    rng = np.random.default_rng(0)
    mean_ms = []
    for head in (0, 1):
        probs = trainer.probabilities(head)
        samples = [space.from_indices([rng.choice(len(p), p=p) for p in probs]) for _ in range(200)]
        mean_ms.append(np.mean([table.predict(g) for g in samples]))
    # Stem and head cost the same everywhere: compare against the range the blocks span.
    low, high = term.bounds()
    assert mean_ms[0] - mean_ms[1] > 0.1 * (high - low)
    summaries = trainer.head_summaries()
    assert summaries[1]["expected_cost"] < summaries[0]["expected_cost"]


def _trainer(task, costs, directory, epochs=2):
    return SupernetTrainer(
        task=task,
        costs=costs,
        heads=[PenaltyLoss(0.0), PenaltyLoss(1.0)],
        settings=SupernetSettings(epochs=epochs, warmup_epochs=0, paths="two", seed=5),
        checkpoint_dir=directory,
    )


def test_a_killed_search_resumes_from_its_last_epoch(digits, tmp_path):
    space = MobileNetSpace(**TINY)
    task = classification_task(space, digits, data_fraction=0.2)
    costs = CostSet(counted_terms(task, ["macs"]))
    first = _trainer(task, costs, tmp_path / "a")
    first.train(until=1)  # then the process dies
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "epoch-0001.pt", "epoch-0001.safetensors", "latest.json"
    ]  # fmt: skip
    resumed = _trainer(task, costs, tmp_path / "a")
    assert resumed.epoch == 1 and not resumed.done
    resumed.train()
    straight = _trainer(task, costs, tmp_path / "b")
    straight.train()
    assert resumed.epoch == straight.epoch == 2
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    flat = [(a, b) for x, y in zip(straight.theta, resumed.theta) for a, b in zip(x, y)]
    for a, b in flat:
        assert torch.equal(a, b) and a.abs().sum() > 0
    # A finished checkpoint trains nothing more.
    again = _trainer(task, costs, tmp_path / "b")
    assert again.done and torch.equal(again.theta[1][0], straight.theta[1][0])
    # Other settings never resume someone else's supernet.
    with pytest.raises(RunError, match="other options"):
        _trainer(task, costs, tmp_path / "b", epochs=3)
