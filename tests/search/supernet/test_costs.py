"""Expected costs for one-hot theta equal the architecture's own costs."""

import numpy as np
import pytest
import torch
from supernet_helpers import DIGITS, SMALL, TINY, build_table, classification_task

from hwnas.profilers.cheap import count_macs, count_params
from hwnas.profilers.memory import estimate_peak_memory
from hwnas.search.supernet.costs import CostSet, counted_terms, latency_term
from hwnas.search.supernet.network import path_indices
from hwnas.spaces.mobilenet import MobileNetSpace


def _one_hot(space, genotype):
    weights = []
    for n, j in zip(space.cardinalities(), path_indices(space, genotype)):
        w = torch.zeros(n, dtype=torch.float64)
        w[j] = 1.0
        weights.append(w)
    return weights


def test_expected_latency_of_one_hot_theta_is_the_lookup_table_sum(fast_cpu):
    space = MobileNetSpace(**TINY)
    table = build_table(space, fast_cpu)
    term = latency_term(table)
    rng = np.random.default_rng(0)
    predictions = []
    for _ in range(6):
        genotype = space.sample(rng)
        expected = float(term.expected(_one_hot(space, genotype)))
        assert expected == pytest.approx(table.predict(genotype), rel=1e-12)
        assert term.exact(path_indices(space, genotype)) == pytest.approx(expected, rel=1e-12)
        predictions.append(expected)
    low, high = term.bounds()
    # The tiny space can sample its cheapest architecture; allow for summation order.
    slack = 1e-9 * high
    assert low - slack <= min(predictions) and max(predictions) <= high + slack and low < high
    # A relaxed mixture costs the weighted mean of the candidates' entries.
    uniform = [torch.full((n,), 1.0 / n, dtype=torch.float64) for n in space.cardinalities()]
    means = sum(float(np.mean(row)) for row in table.choice_matrix())
    assert float(term.expected(uniform)) == pytest.approx(table.fixed_ms + means)


def test_macs_and_params_of_one_hot_theta_are_exact(digits):
    space = MobileNetSpace(**SMALL)
    task = classification_task(space, digits)
    macs, params = counted_terms(task, ["macs", "params"])
    for spec in ["ir_k3_e1-ir_k5_e6-skip", "ir_k5_e1_g2-ir_k3_e3-ir_k3_e1_g2"]:
        genotype = space.parse(spec)
        network = task.build(genotype)
        weights = _one_hot(space, genotype)
        assert float(macs.expected(weights)) == count_macs(network, DIGITS)
        assert float(params.expected(weights)) == count_params(network)


def test_peak_memory_term_tracks_the_network_estimate(digits):
    space = MobileNetSpace(**SMALL)
    task = classification_task(space, digits)
    (term,) = counted_terms(task, ["peak_memory"])
    light, heavy = space.parse("ir_k3_e1-ir_k3_e1-skip"), space.parse("ir_k5_e6-ir_k5_e6-ir_k5_e6")
    values = {}
    for genotype in (light, heavy):
        predicted = float(term.expected(_one_hot(space, genotype)))
        actual = estimate_peak_memory(task.build(genotype), DIGITS).total
        assert predicted == pytest.approx(actual, rel=0.25)
        values[genotype] = predicted
    assert values[heavy] > 2 * values[light]


def test_combined_cost_is_one_for_the_cheapest_architecture(digits):
    space = MobileNetSpace(**TINY)
    task = classification_task(space, digits)
    costs = CostSet(counted_terms(task, ["macs", "params"]), [2.0, 1.0])
    cheapest = [int(torch.argmin(c.per_choice[i])) for i, c in enumerate([costs.terms[0]] * 2)]
    low, high = costs.normalised_bounds()
    assert low == 1.0 and high > 2.0
    assert costs.normalised_exact(cheapest) >= 1.0
    rng = np.random.default_rng(1)
    for _ in range(5):
        indices = [int(rng.integers(n)) for n in space.cardinalities()]
        assert 1.0 <= costs.normalised_exact(indices) <= high + 1e-9
