"""The cost-band hand-off: tilted distributions, bands, and a spread of candidates' costs."""

import numpy as np
import pytest

from hwnas.search.supernet.cells import cell_counted_terms
from hwnas.search.supernet.costs import CostSet
from hwnas.search.supernet.handoff import (
    Pool,
    band_of,
    band_order,
    band_picks,
    farthest_fill,
    handoff_order,
    tilt,
    tilt_to,
)
from hwnas.spaces import make_space
from hwnas.spaces.nb201 import OPS

CELL = {"channels": 8, "cells_per_stage": 1}


def _costs(space):
    terms = cell_counted_terms(space, ["params", "macs"], num_classes=10, input_shape=(1, 16, 16))
    return CostSet(terms)


def _collapsed(p_skip=0.96):
    """A head that collapsed onto skip connections on every edge."""
    p = np.full(len(OPS), (1 - p_skip) / (len(OPS) - 1))
    p[OPS.index("skip_connect")] = p_skip
    return [p.copy() for _ in range(6)]


def test_a_tilt_reaches_any_expected_cost_between_the_extremes():
    costs = [np.array([0.0, 0.0, 1.0, 9.0, 0.0])] * 6
    probs = _collapsed()
    low, high = 0.0, 6 * 9.0
    lams = []
    for fraction in (0.05, 0.3, 0.6, 0.95):
        tilted, lam = tilt_to(probs, costs, low + fraction * (high - low))
        expected = sum(float((q * c).sum()) for q, c in zip(tilted, costs))
        assert expected == pytest.approx(low + fraction * (high - low), rel=1e-6)
        assert all(q.sum() == pytest.approx(1.0) for q in tilted)
        lams.append(lam)
    assert lams == sorted(lams, reverse=True)  # dearer targets need smaller (negative) tilts
    # Among operations of equal cost the head's preference is kept: skip over none and pool.
    q = tilt(probs, costs, 0.3)[0]
    assert q[OPS.index("skip_connect")] > q[OPS.index("none")] == q[OPS.index("avg_pool_3x3")]


def test_bands_are_handed_off_ends_first_then_farthest():
    assert band_order(1) == [0]
    assert band_order(5) == [0, 4, 2, 1, 3]
    assert sorted(band_order(10)) == list(range(10))
    assert [band_of(f, 4) for f in (0.0, 0.24, 0.25, 0.99, 1.0, 1.3, -0.1)] == [0, 0, 1, 3, 3, 3, 0]


def test_band_picks_take_each_bands_best_one_shot_member_then_fill_up():
    F = np.array([[-5.0, 1.0], [-7.0, 1.0], [-1.0, 2.0], [-3.0, 3.0], [-9.0, 3.0]])
    bands, scores = [0, 0, 1, 2, 2], [5.0, 7.0, 1.0, 3.0, 9.0]
    assert band_picks(bands, scores, 3, 3, F) == [1, 4, 2]  # bands 0, 2, 1
    assert band_picks(bands, scores, 3, 2, F) == [1, 4]  # a cut keeps the two ends
    five = band_picks(bands, scores, 3, 5, F)
    assert five[:3] == [1, 4, 2] and sorted(five) == [0, 1, 2, 3, 4]


def test_empty_bands_are_filled_where_the_candidates_are_sparsest_in_cost():
    # Columns: one-shot error, latency, params. Picks sit at both ends; the pool's rest has a
    # near copy of a pick (best one-shot), a middle one and a latency-for-params trade-off.
    F = np.array([
        [-9.0, 0.0, 0.0],   # pick: cheapest
        [-9.0, 1.0, 1.0],   # pick: dearest
        [-99.0, 0.05, 0.0],  # next to the cheapest pick, best one-shot accuracy
        [-1.0, 0.5, 0.5],   # the middle
        [-1.0, 0.9, 0.1],   # slow but small
    ])  # fmt: skip
    assert farthest_fill([0, 1], F, 4) == [0, 1, 4, 3]  # the trade-off lies farthest
    assert farthest_fill([0, 1], F, 5)[-1] == 2  # the near copy comes last
    assert farthest_fill([0, 1, 2], F, 2) == [0, 1]
    assert farthest_fill([], F, 1) == handoff_order(F)[:1]  # nothing taken: predicted front


def test_the_band_hand_off_spreads_a_collapsed_heads_candidates_over_the_cost_range():
    space = make_space("nb201", CELL)
    costs = _costs(space)
    heads, tradeoffs = [_collapsed(), _collapsed(0.8)], [0.0, 1.0]
    bands = 10

    def fractions(pool):
        return [info["cost_fraction"] for _, info in pool.members]

    banded = Pool(space, costs, seen=set())
    banded.draw_bands(heads, tradeoffs, bands, per_band=4, rng=np.random.default_rng(0))
    sampled = Pool(space, costs, seen=set())
    rng = np.random.default_rng(1)
    for h, probs in enumerate(heads):  # the heads' own samples, without the tilt
        for _ in range(20):
            indices = [int(rng.choice(5, p=p)) for p in probs]
            sampled.add(indices, probs, {"head": h, "draw": "sample"})
    scores = [float(i) for i in range(len(banded.members))]
    F = np.array([[-s, f] for s, f in zip(scores, fractions(banded))])
    member_bands = [band_of(f, bands) for f in fractions(banded)]
    picks = band_picks(member_bands, scores, bands, bands, F)
    picked = [member_bands[i] for i in picks]
    filled = len(set(member_bands))  # costs are discrete: not every band can be hit
    assert filled >= 6 and len(picked) == bands
    assert len(set(picked[:filled])) == filled  # one per band first, then the rest
    spread = [fractions(banded)[i] for i in picks]
    assert min(spread) < 0.1 and max(spread) > 0.9
    # Without the tilt a collapsed head's samples stay at the cheap end.
    assert max(fractions(sampled)) < 0.5
    # Every fraction is the exact combined cost of the architecture.
    low, high = costs.normalised_bounds()
    for genotype, info in banded.members:
        indices = [int(i) for i in space.to_indices(genotype)]
        exact = (costs.normalised_exact(indices) - low) / (high - low)
        assert info["cost_fraction"] == pytest.approx(exact, abs=1e-4)
        assert info["draw"] in ("band-mode", "band-sample") and 0 <= info["band"] < bands


def test_the_pool_skips_known_duplicate_and_degenerate_cells():
    space = make_space("nb201", CELL)
    pool = Pool(space, _costs(space), seen={space.from_indices([3] * 6).key()})
    probs = _collapsed()
    info = {"head": 0, "draw": "argmax"}
    assert not pool.add([3] * 6, probs, info)  # already evaluated in this run
    assert not pool.add([0] * 6, probs, info)  # all none: the output ignores the image
    assert pool.add([1] * 6, probs, info)
    assert not pool.add([1] * 6, probs, info)  # a duplicate
    assert len(pool.members) == 1


def test_a_cell_is_degenerate_exactly_when_no_path_reaches_its_output():
    space = make_space("nb201", CELL)
    cut = "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"
    late = "|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"  # node 2 receives nothing
    through = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert space.is_degenerate(space.parse(cut))
    assert space.is_degenerate(space.parse(late))
    assert not space.is_degenerate(space.parse(through))
    assert not space.is_degenerate(space.from_indices([OPS.index("nor_conv_1x1")] * 6))
