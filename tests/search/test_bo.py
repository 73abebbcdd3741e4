"""The ``bo`` strategy: predictors, exact cheap objectives, batches, spaces, kill and resume."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess

import numpy as np
import pytest
from scipy.stats import kendalltau

import hwnas.api
from hwnas.evaluate.table import TabularBenchmark
from hwnas.objectives.base import parse_objective
from hwnas.search.bo import BOSearch
from hwnas.search.bo_acquisition import hvi
from hwnas.spaces import make_space
from hwnas.surrogates.mlp import MLPEnsemble
from hwnas.types import Measurement, Trial, TrialState


def _synthetic(space, number, candidate):
    """Two deterministic objectives from the encoding (no table: any space)."""
    vec = space.encode(candidate.genotype)
    values = {
        "f1": float(vec[::2].sum()),
        "f2": float((vec[1::2] * np.arange(1, 1 + len(vec[1::2]))).sum()),
    }
    return Trial(
        number,
        candidate,
        TrialState.COMPLETE,
        {k: Measurement(k, v, "") for k, v in values.items()},
    )


@pytest.mark.parametrize("space_name", ["nb201", "macro", "mobilenet", "chain"])
def test_every_space_through_its_encoding(space_name):
    space = make_space(space_name)
    objectives = [parse_objective("f1:min"), parse_objective("f2:max")]
    strategy = BOSearch(space=space, objectives=objectives, seed=1, initial=6, batch=3)
    seen, n = [], 0
    while n < 24:
        asked = strategy.ask(3)
        assert asked, "bo proposed nothing"
        for c in asked:
            strategy.known.add(c.key())
        seen += [c.genotype.spec for c in asked]
        strategy.tell([_synthetic(space, n + i, c) for i, c in enumerate(asked)])
        n += len(asked)
    assert len(set(seen)) == len(seen)
    assert strategy._fits > 0, "the predictor never proposed"


def test_batches_in_flight_are_distinct_and_believed():
    """A parallel executor asks again before telling: every proposal is new."""
    space = make_space("nb201")
    objectives = [parse_objective("f1:min"), parse_objective("f2:max")]
    strategy = BOSearch(space=space, objectives=objectives, seed=2, initial=4, batch=4)
    first = strategy.ask(4)
    strategy.tell([_synthetic(space, i, c) for i, c in enumerate(first)])
    a, b = strategy.ask(4), strategy.ask(4)  # the second with the first still in flight
    specs = [c.genotype.spec for c in first + a + b]
    assert len(set(specs)) == 12
    assert strategy._outstanding == [c.genotype.spec for c in a + b]


def test_cheap_objectives_are_used_exactly(nb201_csv):
    """Params are free to compute: every member's 'prediction' is the exact value."""
    space = make_space("nb201")
    table = TabularBenchmark(path=nb201_csv, space=space)
    objectives = [parse_objective("acc_cifar10:max"), parse_objective("params:min")]
    strategy = BOSearch(space=space, objectives=objectives, seed=0, initial=8, batch=4)
    assert strategy._cheap_metrics() == ["params"]
    cheap = strategy.cheap
    n = 0
    while n < 16:
        asked = strategy.ask(4)
        trials = []
        for c in asked:
            strategy.known.add(c.key())
            values = dict(table.query(c.genotype, ["acc_cifar10"]))
            values["params"] = Measurement("params", cheap(c.genotype, ["params"])["params"], "")
            trials.append(Trial(n, c, TrialState.COMPLETE, values))
            n += 1
        strategy.tell(trials)
    pool = [g.spec for g in table.genotypes()[:50]]
    predicted, _ = strategy._predict(list(strategy._rows), pool)
    exact = [cheap(space.parse(s), ["params"])["params"] for s in pool]
    assert np.array_equal(predicted[:, :, 1], np.tile(exact, (strategy.members, 1)))
    assert predicted[:, :, 0].std(axis=0).max() > 0, "accuracy should be predicted, with spread"


def test_predictor_rank_correlation_rises_with_data(nb201_csv):
    space = make_space("nb201")
    table = TabularBenchmark(path=nb201_csv, space=space)
    genotypes = table.genotypes()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(genotypes))
    test, train = order[:2000], order[2000:]
    X = np.array([space.predictor_features(g) for g in genotypes])
    Y = np.column_stack([table.values("acc_cifar10"), table.values("lat_fpga_ms")])
    taus = []
    for n in (20, 100, 400):
        model = MLPEnsemble(seed=3, steps=150).fit(
            X[train[:n]], Y[train[:n]], ["rank", "standard"], linear_columns=30
        )
        mean = model.predict(X[test]).mean(axis=0)
        taus.append([kendalltau(mean[:, j], Y[test, j])[0] for j in range(2)])
    taus = np.array(taus)
    assert (np.diff(taus[:, 0]) > 0).all(), taus  # accuracy: more data, better ranking
    assert taus[-1, 0] > 0.6 and taus[-1, 1] > 0.95, taus  # latency adds up per edge


def test_hypervolume_improvement_matches_the_definition():
    from hwnas.objectives.pareto import hypervolume

    rng = np.random.default_rng(4)
    front = rng.random((6, 2))
    points = rng.random((40, 2)) * 1.2
    ref = np.array([1.1, 1.1])
    base = hypervolume(front, ref)
    exact = [hypervolume(np.vstack([front, p]), ref) - base for p in points]
    assert np.allclose(hvi(front, points, ref), exact)
    front3, points3 = rng.random((5, 3)), rng.random((30, 3))
    ref3 = np.full(3, 1.1)
    base3 = hypervolume(front3, ref3)
    exact3 = np.array([hypervolume(np.vstack([front3, p]), ref3) - base3 for p in points3])
    assert np.abs(hvi(front3, points3, ref3) - exact3).max() < 0.03  # Monte Carlo


def test_bo_searches_digits_with_trained_candidates(tmp_path):
    result = hwnas.api.search(
        space="chain", strategy="bo", dataset="digits",
        objectives=["error", "params"], budget=4, seed=0, out=tmp_path / "run",
        space_options={"resolution": 16, "in_channels": 1},
        strategy_options={"initial": 2, "batch": 2},
        training={"epochs": 1, "batch_size": 64, "data_fraction": 0.3, "train_device": "cpu"},
    )  # fmt: skip
    assert [t.state for t in result.trials] == [TrialState.COMPLETE] * 4
    assert len({t.genotype.spec for t in result.trials}) == 4


def _cli(*args):
    import sys

    return [sys.executable, "-m", "hwnas.cli", *args]


def _args(csv, out, budget):
    return [
        "search", "--space", "nb201", "--benchmark", str(csv),
        "--objective", "acc_cifar10:max", "--objective", "lat_fpga_ms:min",
        "--strategy", "bo", "--budget", str(budget), "--seed", "0", "--out", str(out),
    ]  # fmt: skip


def _complete(db_path):
    try:
        with sqlite3.connect(db_path, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM trials WHERE state='complete'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume_proposes_what_an_uninterrupted_run_does(tmp_path, nb201_csv):
    budget = 150
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*_args(nb201_csv, out, budget)), stderr=subprocess.PIPE)
    try:
        while _complete(out / "hwnas.db") < 40:
            assert proc.poll() is None, "the search ended before it could be killed"
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _complete(out / "hwnas.db") < budget
    subprocess.run(
        _cli("resume", str(out), "--budget", str(budget)), check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    straight = tmp_path / "straight"
    subprocess.run(
        _cli(*_args(nb201_csv, straight, budget)), check=True, capture_output=True, timeout=300
    )
    keys = "SELECT key FROM trials ORDER BY number"
    with sqlite3.connect(out / "hwnas.db") as a, sqlite3.connect(straight / "hwnas.db") as b:
        resumed, uninterrupted = a.execute(keys).fetchall(), b.execute(keys).fetchall()
    assert len(resumed) == budget and resumed == uninterrupted


def test_a_search_without_a_strategy_uses_the_default(tmp_path, nb201_csv):
    from hwnas.search import DEFAULT_TABLE, DEFAULT_TRAINING, default_strategy

    assert default_strategy(benchmark=nb201_csv) == DEFAULT_TABLE == "bo"
    assert default_strategy(dataset="digits") == DEFAULT_TRAINING == "lemonade"
    assert default_strategy(benchmark=nb201_csv, dataset="digits") == DEFAULT_TRAINING
    result = hwnas.api.search(
        space="nb201", benchmark=nb201_csv, objectives=["acc_cifar10:max", "lat_fpga_ms:min"],
        budget=14, out=tmp_path / "run",
    )  # fmt: skip
    assert result.config.strategy == "bo" and len(result.trials) == 14
    assert 'strategy = "bo"' in (tmp_path / "run" / "config.toml").read_text()


def test_random_proposals_avoid_candidates_in_flight():
    """While the first results are out, every random proposal is new (a tiny space)."""
    from hwnas.spaces.base import CategoricalSpace

    class Tiny(CategoricalSpace):
        name = "tiny"
        input_shape = (1, 4, 4)

        def options(self):
            return [("a", "b"), ("a", "b", "c")]

        def to_spec(self, choices):
            return "-".join(choices)

        def from_spec(self, spec):
            return spec.split("-")

        def build(self, genotype, *, num_classes, in_channels=3):
            raise NotImplementedError

    space = Tiny()
    objectives = [parse_objective("f1:min"), parse_objective("f2:max")]
    strategy = BOSearch(space=space, objectives=objectives, seed=0, initial=6, batch=2)
    asked = [c.genotype.spec for _ in range(3) for c in strategy.ask(2)]
    assert sorted(asked) == sorted({*asked}) and len(asked) == 6  # all six architectures


def test_table_latency_is_cheap_and_accuracy_is_not(nb201_csv, tmp_path):
    """A table's device columns are a lookup table (free for every architecture); its
    accuracy stands in for training: the run hands strategies the first, never the second."""
    from hwnas.evaluate.cheap import CheapEvaluator
    from hwnas.evaluate.table import TableProvider

    space = make_space("nb201")
    provider = TableProvider(TabularBenchmark(path=nb201_csv, space=space))
    assert {"lat_fpga_ms", "lat_eyeriss_ms"} <= provider.cheap_metrics()
    assert not provider.cheap_metrics() & {"acc_cifar10", "acc12_cifar10"}
    cheap = CheapEvaluator([provider])
    genotype = space.sample(np.random.default_rng(0))
    expected = provider.benchmark.query(genotype, ["lat_fpga_ms"])["lat_fpga_ms"].value
    assert cheap(genotype, ["lat_fpga_ms"]) == {"lat_fpga_ms": expected}
    with pytest.raises(Exception, match="no training-free source for acc_cifar10"):
        cheap(genotype, ["acc_cifar10"])


def test_never_proposes_a_known_function_the_front_dominates(nb201_csv):
    """A cell computing the same function as one evaluated once, and no cheaper, has a known
    outcome that the front weakly dominates: proposing it would waste an evaluation."""
    from hwnas.evaluate.cheap import CheapEvaluator
    from hwnas.evaluate.table import TableProvider

    space = make_space("nb201")
    table = TabularBenchmark(path=nb201_csv, space=space)
    objectives = [parse_objective("acc_cifar10:max"), parse_objective("lat_fpga_ms:min")]
    strategy = BOSearch(space=space, objectives=objectives, seed=3, initial=10, batch=2)
    strategy.cheap = CheapEvaluator([TableProvider(table)])
    evaluated: dict[str, list[float]] = {}  # function key -> latencies evaluated
    wasted, n = [], 0
    while n < 80:
        asked = strategy.ask(2)
        for c in asked:
            key = space.function_key(c.genotype)
            lat = table.query(c.genotype, ["lat_fpga_ms"])["lat_fpga_ms"].value
            twins = evaluated.get(key, [])
            if n >= strategy.initial and len(twins) == 1 and lat >= twins[0]:
                wasted.append(c.genotype.spec)
            evaluated.setdefault(key, []).append(lat)
            strategy.known.add(c.key())
        values = [table.query(c.genotype, ["acc_cifar10", "lat_fpga_ms"]) for c in asked]
        strategy.tell(
            [Trial(n + i, c, TrialState.COMPLETE, v) for i, (c, v) in enumerate(zip(asked, values))]
        )
        n += len(asked)
    assert strategy._fits > 0
    assert wasted == []


def test_state_round_trip_between_refits_proposes_the_same():
    """With refits far apart, a strategy restored from JSON state between two refits rebuilds
    the predictors the original holds (from the same prefix of rows and fit count) and goes
    on proposing exactly what the original proposes."""
    import json

    space = make_space("nb201")
    objectives = [parse_objective("f1:min"), parse_objective("f2:max")]

    def make() -> BOSearch:
        return BOSearch(space=space, objectives=objectives, seed=4, initial=6, batch=2, refit=0.5)

    def step(strategy: BOSearch, n: int) -> list[str]:
        asked = strategy.ask(2)
        for c in asked:
            strategy.known.add(c.key())
        strategy.tell([_synthetic(space, n + i, c) for i, c in enumerate(asked)])
        return [c.genotype.spec for c in asked]

    original, n = make(), 0
    while n < 20:
        n += len(step(original, n))
    fits, fit_told = original._fits, original._fit_told
    assert fits > 0 and len(original._rows) > fit_told, "the restore must fall between refits"
    restored = make()
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    restored.known = set(original.known)
    ahead = [step(s, n) for s in (original, restored)]
    assert ahead[0] == ahead[1]
    assert original._fits == restored._fits == fits, "no refit happened in between"
    for _ in range(8):  # through the next refit as well
        n += 2
        assert step(original, n) == step(restored, n)
    assert original._fits > fits
