"""DARTS- (robust=darts-minus): a decaying auxiliary skip on every nb201 edge, only in training."""

import itertools

import pytest
import torch
from supernet_helpers import CELL, cell_trainer
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.errors import ConfigError
from hwnas.objectives.base import parse_objective
from hwnas.search import make_strategy
from hwnas.search.supernet.cell import CellSupernet, MixedEdge
from hwnas.search.supernet.costs import CostSet
from hwnas.search.supernet.losses import PenaltyLoss
from hwnas.search.supernet.ranking import oneshot_accuracies
from hwnas.search.supernet.robust import auxiliary_skip, darts_minus_beta
from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer

MIXED = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


def test_beta_holds_through_warmup_then_decays_linearly_to_zero():
    beta = lambda epoch, fraction=0.0, b=1.0: darts_minus_beta(  # noqa: E731
        "darts-minus", b, epoch, fraction, warmup=1, epochs=5
    )
    assert beta(0) == beta(0, 0.9) == 1.0  # warm-up: the weights learn with the full skip
    assert beta(1) == 1.0  # first search step
    assert beta(3) == pytest.approx(0.5)  # half of the 4 search epochs done
    assert beta(4, 0.5) == pytest.approx(0.125)
    assert beta(4, 0.5, b=2.0) == pytest.approx(0.25)  # robust_beta scales it
    assert beta(5) == 0.0  # after the last epoch
    values = [beta(e, f / 10) for e in range(1, 5) for f in range(10)]
    assert all(a > b for a, b in itertools.pairwise(values))  # per step, not per epoch
    for other in ("none", "sdarts-rs", "hessian-es"):
        assert darts_minus_beta(other, 1.0, 2, 0.0, warmup=1, epochs=5) == 0.0


def test_a_mixed_edge_adds_beta_times_its_input():
    torch.manual_seed(0)
    edge = MixedEdge(4)
    x = torch.randn(3, 4, 8, 8)
    weights = torch.softmax(torch.randn(5), 0)
    with torch.no_grad():
        plain = edge(x, weights, range(5))
        assert torch.equal(edge(x, weights, range(5), 0.0), plain)
        assert torch.equal(edge(x, weights, range(5), 0.7), plain + 0.7 * x)
    # The network's switch reaches every edge, never enters the state, and is reset.
    torch.manual_seed(1)
    net = CellSupernet(num_classes=10, in_channels=1, **CELL)
    w = torch.softmax(torch.randn(6, 5), 1)
    xs = torch.randn(4, 1, 16, 16)
    net.eval()
    seen: list[float] = []
    for cell in net.cells:
        for layer in getattr(cell, "layers", []):
            layer.register_forward_pre_hook(lambda m, args: seen.append(args[3]))
    with torch.no_grad():
        before = net(xs, w)
        with auxiliary_skip(net, 0.5):
            assert net.aux_skip == 0.5
            skipped = net(xs, w)
        assert net.aux_skip == 0.0 and torch.equal(net(xs, w), before)
    assert not torch.equal(skipped, before)
    assert seen.count(0.5) == 6 * 3 and seen.count(0.0) == 2 * 6 * 3  # 3 cells of 6 edges
    assert "aux_skip" not in str(list(net.state_dict()))
    with pytest.raises(RuntimeError), auxiliary_skip(net, 0.5):
        raise RuntimeError("a failed step")
    assert net.aux_skip == 0.0


def _trainer(digits, robust="darts-minus", checkpoint_dir=None, **settings):
    options = {"epochs": 3, "warmup_epochs": 1, "robust": robust, "seed": 2, **settings}
    return cell_trainer(digits, data_fraction=0.2, checkpoint_dir=checkpoint_dir, **options)


def test_training_uses_the_skip_and_scoring_and_hand_off_do_not(digits, tmp_path):
    space, trainer = _trainer(digits, checkpoint_dir=tmp_path / "a")
    net = trainer.model.net
    seen: list[float] = []
    net.register_forward_pre_hook(lambda m, args: seen.append(m.aux_skip))
    steps = trainer.steps_per_epoch
    trainer.train(until=2)
    weight_steps = seen[:steps]  # warm-up: weight steps only, all at beta = 1
    assert weight_steps == [1.0] * steps
    search = seen[steps:]  # the first search epoch: weight and theta steps, decaying
    assert search[0] == 1.0 and 0.5 <= min(search) < 1.0
    assert all(a >= b for a, b in itertools.pairwise(search))
    assert net.aux_skip == 0.0  # between epochs and after training: off
    # A resumed search continues the schedule (it is a function of epoch and step).
    seen.clear()
    _, resumed = _trainer(digits, checkpoint_dir=tmp_path / "a")
    resumed.model.net.register_forward_pre_hook(lambda m, args: seen.append(m.aux_skip))
    assert resumed.epoch == 2
    resumed.train()
    assert min(seen) > 0 and max(seen) <= 0.5 and net.aux_skip == resumed.model.aux_skip == 0.0
    _, straight = _trainer(digits, checkpoint_dir=tmp_path / "b")
    straight.train()
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    _, plain = _trainer(digits, robust="none")
    plain.train()
    assert not torch.equal(plain.theta[0][0], straight.theta[0][0])  # the skip changed training
    # One-shot scoring sees no skip; the one-hot path is the stand-alone network, bit for bit.
    seen.clear()
    genotype = space.parse(MIXED)
    oneshot_accuracies(resumed, [genotype], batches=2)
    assert seen and set(seen) == {0.0}
    network = space.build(genotype, num_classes=10, in_channels=1)
    network.load_state_dict(resumed.extract(genotype), strict=True)
    weights, active = resumed.model.one_hot(genotype)
    x = torch.randn(8, 1, 16, 16)
    for mode in (False, True):
        resumed.model.train(mode)
        network.train(mode)
        with torch.no_grad():
            assert torch.equal(resumed.model(x, weights, active), network(x)), mode


def test_snas_trains_with_the_skip_too(digits):
    space, trainer = _trainer(digits, epochs=2, relaxation="gumbel", robust_beta=0.5)
    seen: list[float] = []
    trainer.model.net.register_forward_pre_hook(lambda m, args: seen.append(m.aux_skip))
    trainer.train()
    assert seen[0] == 0.5 and 0 < min(seen) < 0.5 and trainer.model.aux_skip == 0.0
    error = [parse_objective("error")]
    options = {"robust": "darts-minus", "robust_beta": 0.5}
    strategy = make_strategy("snas", space=space, objectives=error, options=options)
    assert (strategy.robust, strategy.robust_beta) == ("darts-minus", 0.5)


def test_darts_minus_needs_the_cell_space_and_a_sane_beta(digits):
    with pytest.raises(ConfigError, match="robust_beta must be in"):
        SupernetSettings(epochs=2, robust="darts-minus", robust_beta=0.0)
    from supernet_helpers import TINY, classification_task

    from hwnas.search.supernet.costs import counted_terms
    from hwnas.spaces.mobilenet import MobileNetSpace

    task = classification_task(MobileNetSpace(**TINY), digits, data_fraction=0.1)
    with pytest.raises(ConfigError, match="needs the nb201 cell space"):
        SupernetTrainer(
            task=task, costs=CostSet(counted_terms(task, ["macs"])), heads=[PenaltyLoss(0.0)],
            settings=SupernetSettings(epochs=2, robust="darts-minus"),
        )  # fmt: skip


def _cli(out, *options, space="nb201", space_options=("channels=4", "cells_per_stage=1")):
    args = ["search", "--space", space, "--dataset", "digits", "--strategy", "darts",
            "--objective", "error", "--objective", "params", "--budget", "2", "--epochs", "0.3",
            "--data-fraction", "0.2", "--batch-size", "32", "--train-device", "cpu",
            "--no-progress", "--out", str(out)]  # fmt: skip
    for option in space_options:
        args += ["--space-option", option]
    for option in ("epochs=2", "warmup_epochs=1", "lambdas=[0, 1]", *options):
        args += ["--strategy-option", option]
    return CliRunner().invoke(app, args)


def test_a_darts_minus_search_runs_from_the_cli_and_bad_values_exit_2(tmp_path):
    import sqlite3

    out = tmp_path / "run"
    result = _cli(out, "robust=darts-minus", "robust_beta=0.5")
    assert result.exit_code == 0, result.stderr
    with sqlite3.connect(out / "hwnas.db") as db:
        events = db.execute("SELECT data FROM events WHERE kind = 'supernet_epoch'").fetchall()
        done = db.execute("SELECT COUNT(*) FROM trials WHERE state = 'complete'").fetchone()
    assert len(events) == 2 and '"aux_skip": 0.5' in events[1][0] and done == (2,)
    for options, kwargs, match in [
        (["robust=darts-minus", "robust_beta=-1"], {}, "robust_beta must be positive"),
        (["robust=darts-minus", "robust_beta=20"], {}, "robust_beta must be in (0, 10]"),
        (["robust=dartsminus"], {}, "darts-minus"),
        (["robust=darts-minus"], {"space": "mobilenet", "space_options": ()}, "--space nb201"),
    ]:
        bad = tmp_path / "bad"
        result = _cli(bad, *options, **kwargs)
        assert result.exit_code == 2, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], lines
        assert not bad.exists()
