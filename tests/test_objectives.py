import math

import numpy as np
import pytest

from hwnas.errors import ConfigError
from hwnas.objectives.base import Direction, convert, infer_unit, parse_constraint, parse_objective
from hwnas.objectives.pareto import (
    hypervolume,
    knee_index,
    nondominated_mask,
    normalised_hypervolume,
    pareto_ranks,
)


@pytest.mark.parametrize(
    ("text", "metric", "direction"),
    [
        ("latency", "latency", Direction.MIN),
        ("accuracy", "accuracy", Direction.MAX),
        ("acc_cifar10:max", "acc_cifar10", Direction.MAX),
        ("lat_fpga_ms:min", "lat_fpga_ms", Direction.MIN),
        ("mean_acc", "mean_acc", Direction.MAX),
        (" params : MIN ", "params", Direction.MIN),
    ],
)
def test_parse_objective(text, metric, direction):
    o = parse_objective(text)
    assert (o.metric, o.direction) == (metric, direction)


@pytest.mark.parametrize("bad", ["", "lat:fast", "9lives", "a b"])
def test_parse_objective_rejects(bad):
    with pytest.raises(ConfigError):
        parse_objective(bad)


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("params<=1.5e6", "count", 1.5e6),
        ("params<=1.5M", "count", 1.5e6),
        ("latency<=5ms", "ms", 5.0),
        ("latency<=0.005s", "ms", 5.0),
        ("latency<=500us", "ms", 0.5),
        ("size<=2MiB", "B", 2 * 1024**2),
        ("size<=2MB", "B", 2e6),
        ("macs<=300M", "MAC", 3e8),
        ("accuracy>=90%", "%", 90.0),
        ("energy<1J", "mJ", 1000.0),
    ],
)
def test_constraint_units(text, unit, expected):
    c = parse_constraint(text).resolved(unit)
    assert c.bound == pytest.approx(expected)


def test_constraint_violation_and_direction():
    le = parse_constraint("latency<=5ms").resolved("ms")
    assert le.violation(4.0) == 0 and le.violation(6.5) == pytest.approx(1.5)
    ge = parse_constraint("accuracy>=90").resolved("%")
    assert ge.violation(95) == 0 and ge.violation(85) == pytest.approx(5)
    assert math.isinf(le.violation(math.nan))


@pytest.mark.parametrize("bad", ["params", "params<=", "params==3", "latency<=5parsecs"])
def test_constraint_rejects(bad):
    with pytest.raises(ConfigError):
        parse_constraint(bad)


def test_constraint_unit_of_wrong_family():
    with pytest.raises(ConfigError, match="does not fit"):
        parse_constraint("latency<=5MB").resolved("ms")
    with pytest.raises(ConfigError, match="unknown"):
        parse_constraint("mystery<=5ms").resolved("")


def test_units_inferred_from_column_names():
    assert infer_unit("lat_fpga_ms") == "ms"
    assert infer_unit("acc_cifar10") == "%"
    assert infer_unit("params") == "count"
    assert infer_unit("flops") == "MAC"
    assert convert(1.0, "s", "ms") == 1000.0


def test_nondominated_and_ranks_match_brute_force():
    rng = np.random.default_rng(0)
    F = rng.random((200, 3))
    mask = nondominated_mask(F)
    for i in range(len(F)):
        dominated = np.any(np.all(F[i] >= F, axis=1) & np.any(F[i] > F, axis=1))
        assert mask[i] == (not dominated)
    ranks = pareto_ranks(F)
    assert set(np.flatnonzero(ranks == 0)) == set(np.flatnonzero(mask))
    F[5, 1] = np.nan
    assert not nondominated_mask(F)[5] and pareto_ranks(F)[5] == -1


def test_hypervolume_of_known_shapes():
    assert hypervolume(np.array([[0.0, 0.0]]), [1.0, 1.0]) == pytest.approx(1.0)
    staircase = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert hypervolume(staircase, [1.0, 1.0]) == pytest.approx(0.75)
    # Points beyond the reference add nothing.
    assert hypervolume(np.array([[2.0, 2.0]]), [1.0, 1.0]) == 0.0
    # Normalised: the ideal point alone covers the whole box up to 1.1, which counts as 1.
    ideal, nadir = np.array([1.0, 10.0]), np.array([3.0, 30.0])
    assert normalised_hypervolume(np.array([[1.0, 10.0]]), ideal, nadir) == pytest.approx(1.0)
    # The nadir alone covers 0.1 x 0.1 of the 1.1 x 1.1 box.
    assert normalised_hypervolume(np.array([[3.0, 30.0]]), ideal, nadir) == pytest.approx(
        0.01 / 1.21
    )
    # Never above 1, even for a point better than the ideal of other trials.
    assert normalised_hypervolume(np.array([[0.0, 0.0]]), ideal, nadir) == pytest.approx(1.0)


def test_knee_is_the_bend_of_a_convex_front():
    t = np.linspace(0, 1, 41)
    F = np.c_[t, (1 - t) ** 4]  # sharp bend near t ~ 0.3
    k = knee_index(F)
    assert 0.2 <= F[k, 0] <= 0.45
    # Scale invariance: the knee does not depend on units.
    assert knee_index(F * [1000.0, 0.001]) == k
