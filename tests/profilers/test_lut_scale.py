"""A latency table scaled to whole networks timed in the same session (onnxruntime, the
default `cpu` runtime): sums keep each block's relative cost and match the networks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.lut import LatencyTable
from hwnas.profilers.lut_scale import fit_scale, sample_genotypes
from hwnas.spaces.mobilenet import MobileNetSpace


def test_fit_scale_is_the_median_ratio_with_leave_one_out_error():
    fit = fit_scale([2.0, 4.0, 6.0], [1.0, 2.0, 3.3])
    assert fit["scale"] == pytest.approx(0.5)
    assert fit["mape_unscaled"] == pytest.approx(np.mean([1.0, 1.0, 2.7 / 3.3]))
    assert fit["mape_leave_one_out"] < fit["mape_unscaled"]


def test_sampled_networks_are_distinct_and_seeded():
    space = MobileNetSpace(stages=[[16, 1, 1], [24, 2, 1]])
    a, b = sample_genotypes(space, 5, seed=1), sample_genotypes(space, 5, seed=1)
    assert a == b and len({g.key() for g in a}) == len(a) == 5


def test_calibrated_table_scales_every_entry_by_one_factor(fast_ort):
    space = MobileNetSpace(stages=[[16, 1, 1], [24, 2, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        plain = LatencyTable.build(space, fast_ort, num_classes=10, seed=0)
        scaled = LatencyTable.build(space, fast_ort, num_classes=10, seed=0, calibrate=6)
    fit = scaled.meta["calibration"]
    assert fit["networks"] == 6 and fit["scale"] > 0
    assert fit["mape_leave_one_out"] >= 0 and fit["mape_unscaled"] >= 0
    g = space.parse("ir_k5_e6-ir_k3_e1")
    # Each entry is its measured value times the scale (the two builds measured separately, so
    # only the structure is compared: the scaled table's sum is its own entries' sum).
    parts = [scaled.layer_ms(s) for s in scaled.space.layer_specs(g)]
    assert scaled.predict(g) == pytest.approx(scaled.fixed_ms + sum(parts))
    assert "calibration" not in plain.meta
