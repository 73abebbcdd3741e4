"""darts, snas and fbnet on the nb201 cell space: costs per edge, collapse, ranking, real runs."""

import json
import sqlite3

import pytest
import torch
from supernet_helpers import CELL, DIGITS, cell_trainer

from hwnas.api import search
from hwnas.devices import load_device
from hwnas.errors import ConfigError
from hwnas.objectives.base import parse_objective
from hwnas.search import make_strategy
from hwnas.search.supernet.cells import (
    cell_counted_terms,
    table_latency_term,
)
from hwnas.search.supernet.ranking import oneshot_accuracies
from hwnas.spaces import make_space
from hwnas.spaces.nb201 import EDGES, OPS
from hwnas.types import TrialState

QUICK = {"epochs": 0.5, "batch_size": 32, "data_fraction": 0.3, "lr": 0.05, "train_device": "cpu"}


def _events(run_dir, kind):
    with sqlite3.connect(run_dir / "hwnas.db") as db:
        rows = db.execute("SELECT data FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [json.loads(r[0]) for r in rows]


def _trainer(digits, **settings):
    return cell_trainer(digits, epochs=1, **settings)


def test_per_edge_params_and_macs_are_exact_for_any_cell():
    from hwnas.profilers.cheap import count_macs, count_params

    space = make_space("nb201", CELL)
    terms = cell_counted_terms(space, ["params", "macs"], num_classes=10, input_shape=DIGITS)
    mixed = (
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    for genotype in (space.parse(mixed), space.from_indices([0] * 6)):
        indices = [int(i) for i in space.to_indices(genotype)]
        network = space.build(genotype, num_classes=10, in_channels=1)
        assert terms[0].exact(indices) == count_params(network)
        assert terms[1].exact(indices) == count_macs(network, DIGITS)
        one_hot = [torch.nn.functional.one_hot(torch.tensor(j), len(OPS)) for j in indices]
        assert float(terms[0].expected(one_hot)) == pytest.approx(count_params(network))


def test_table_fit_recovers_an_additive_latency_table():
    space = make_space("nb201", CELL)
    generator = torch.Generator().manual_seed(0)
    truth = torch.rand(len(EDGES), len(OPS), generator=generator, dtype=torch.float64)
    specs, latencies = [], []
    for code in range(0, 15625, 97):
        genotype = space.from_index(code)
        indices = [int(i) for i in space.to_indices(genotype)]
        specs.append(genotype.spec)
        latencies.append(2.0 + sum(float(truth[p, j]) for p, j in enumerate(indices)))
    term, fit = table_latency_term(space, specs, latencies)
    assert fit["mape"] < 1e-9
    for spec, latency in zip(specs[:20], latencies[:20]):
        indices = [int(i) for i in space.to_indices(space.parse(spec))]
        assert term.exact(indices) == pytest.approx(latency)
    with pytest.raises(ConfigError, match="at least 25"):
        table_latency_term(space, specs[:3], latencies[:3])


def test_collapse_is_logged_from_the_derived_cell_of_constructed_logits(digits):
    _, trainer = _trainer(digits)
    skip, conv = OPS.index("skip_connect"), OPS.index("nor_conv_3x3")
    with torch.no_grad():  # three edges prefer skip, two pooling, one a convolution
        for edge, op in enumerate([skip, skip, skip, OPS.index("avg_pool_3x3"), 4, conv]):
            trainer.theta[0][edge][op] = 1.0
    (summary,) = trainer.head_summaries()
    assert summary["collapse"] == {
        "skip_share": 0.5, "parameter_free_share": pytest.approx(5 / 6), "positions": 6
    }  # fmt: skip
    logged = []
    trainer.log = lambda kind, **data: logged.append((kind, data))
    trainer.train()
    kinds = [k for k, _ in logged]
    assert kinds == ["supernet_epoch", "supernet_collapse"]
    assert logged[1][1]["epoch"] == 1 and len(logged[1][1]["heads"]) == 1


def test_oneshot_accuracy_leaves_the_supernet_unchanged(digits):
    space, trainer = _trainer(digits)
    trainer.train()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    genotypes = [space.from_indices([3] * 6), space.from_indices([1] * 6)]
    scores = oneshot_accuracies(trainer, genotypes, batches=2)
    assert len(scores) == 2 and all(0 <= s <= 100 for s in scores)
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert oneshot_accuracies(trainer, genotypes, batches=2) == scores  # seeded


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("darts", {"lambdas": [0.0, 1.0], "paths": "full", "theta_heads": "all", "finetune": True}),
        ("snas", {"lambdas": [0.0, 1.0], "finetune": True}),
        ("fbnet", {"betas": [0.0, 1.0]}),
        ("darts", {"lambdas": [0.0, 1.0], "robust": "sdarts-rs", "paths": "two"}),
        ("snas", {"lambdas": [0.0, 1.0], "robust": "hessian-es", "handoff": "pareto"}),
    ],
)
def test_a_tiny_cell_search_runs_end_to_end(tmp_path, fast_cpu, strategy, options):
    out = tmp_path / "run"
    result = search(
        space="nb201", space_options=CELL, strategy=strategy, dataset="digits",
        device=str(fast_cpu.source), objectives=["error", "latency", "params"], budget=4,
        training=QUICK, out=out,
        strategy_options={"epochs": 2, "warmup_epochs": 1, "theta_lr": 0.2, **options},
    )  # fmt: skip
    assert [t.state for t in result.trials] == [TrialState.COMPLETE] * 4
    collapse = _events(out, "supernet_collapse")
    assert [e["epoch"] for e in collapse] == [1, 2]
    assert all(
        0 <= h["skip_share"] <= h["parameter_free_share"] <= 1 for h in collapse[-1]["heads"]
    )
    if options.get("robust") == "hessian-es":  # one search epoch: measured, too few to stop
        (searched,) = [e for e in _events(out, "supernet_epoch") if e["phase"] == "search"]
        assert len(searched["hessian_eigenvalues"]) == 2
        assert all(v is not None for v in searched["hessian_eigenvalues"])
    # The search's own time: cost terms, training and hand-off (never less than its parts).
    (front,) = _events(out, "supernet_front")
    assert front["derive_seconds"] > 0 and front["train_seconds"] > 0
    assert front["search_seconds"] >= front["train_seconds"] + front["derive_seconds"] - 2e-3
    (measured,) = _events(out, "cell_latency_measured")
    assert set(measured["uniform_cells_ms"]) == set(OPS)
    ranking = _events(out, "supernet_ranking")
    assert ranking and ranking[-1]["n"] == 4 and ranking[-1]["top_k"] == 4
    for trial in result.trials:
        assert 0 <= trial.candidate.info["oneshot_accuracy"] <= 100
        if options.get("finetune"):
            assert (out / trial.candidate.transfer["weights"]).is_file()
            assert trial.measurements["error"].env["transfer"]["kind"] == "supernet"
        else:  # the default: trained from scratch
            assert trial.candidate.transfer is None
        space = make_space("nb201", CELL)
        assert trial.measurements["params"].value == cell_counted_terms(
            space, ["params"], num_classes=10, input_shape=DIGITS
        )[0].exact([int(i) for i in space.to_indices(trial.genotype)])


def test_robust_is_offered_by_darts_and_checked():
    space = make_space("nb201", CELL)
    error = [parse_objective("error")]
    strategy = make_strategy(
        "darts", space=space, objectives=error, options={"robust": "sdarts-rs"}
    )
    assert strategy.robust == "sdarts-rs"
    with pytest.raises(ConfigError, match="robust must be one of none, sdarts-rs"):
        make_strategy("snas", space=space, objectives=error, options={"robust": "hessian"})
    with pytest.raises(ConfigError, match="es_ratio must be in"):
        make_strategy("darts", space=space, objectives=error, options={"es_ratio": 1.0})
    with pytest.raises(ConfigError, match="es_window must be a whole number"):
        make_strategy("darts", space=space, objectives=error, options={"es_window": 0})
    assert load_device("cpu").name == "cpu"
