"""Learned latency predictor: features, fidelity figures, calibration, files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import DeviceError
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.lut import LatencyTable
from hwnas.profilers.predictor import (
    LatencyPredictor,
    arch_features,
    calibrate,
    feature_names,
    fidelity,
)
from hwnas.spaces.mobilenet import MobileNetSpace

STAGES = [[16, 1, 1], [24, 2, 2]]


@pytest.fixture
def table(fast_cpu) -> LatencyTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        return LatencyTable.build(MobileNetSpace(stages=STAGES), fast_cpu, num_classes=10)


def test_fidelity_figures() -> None:
    measured = [1.0, 2.0, 3.0, 4.0]
    f = fidelity([1.04, 2.3, 2.9, 4.0], measured)
    assert f["within_10"] == 0.75 and f["within_5"] == 0.75 and f["n"] == 4
    assert f["mape"] == pytest.approx((0.04 + 0.15 + 1 / 30 + 0) / 4)
    assert f["kendall_tau"] == 1.0
    assert fidelity([4.0, 3.0, 2.0, 1.0], measured)["kendall_tau"] == -1.0


def test_features(table) -> None:
    g = table.space.parse("ir_k5_e6-ir_k3_e1-skip")
    feats = arch_features(table, g)
    assert list(feats) == feature_names(table)
    assert feats["lut_sum"] == pytest.approx(table.predict(g))
    assert feats["lut_k5"] + feats["lut_k3"] + feats["lut_skip"] == pytest.approx(
        feats["lut_sum"] - table.fixed_ms
    )
    # The skip layer is no block; the first block keeps 16 channels, so it adds its input.
    assert feats["depth"] == 2 and feats["residuals"] == 1
    assert feats["macs"] > 0 and feats["params"] > 0 and feats["activations"] > 0


def test_calibration_reports_and_round_trips(table, fast_cpu, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        predictor = calibrate(table, fast_cpu, samples=16, holdout=0.25, repeats=5, seed=0)
    report = predictor.report
    assert report["n_train"] == 12 and report["n_test"] == 4
    for key in ("lut", "predictor"):
        assert {"within_10", "within_5", "mape", "kendall_tau", "n"} <= set(report[key])
    assert report["model"] in ("scaled_lut", "ridge", "gbr")
    assert set(report["cv_mape"]) == {"scaled_lut", "ridge", "gbr"}
    assert len(set(g.spec for g in predictor.genotypes)) == 16
    assert table.meta["fidelity"] == report["lut"]  # the table now knows its own error
    assert table.measurement(predictor.genotypes[0]).env["error"] == report["lut"]
    g = predictor.genotypes[0]
    m = predictor.measurement(g, device="cpu")
    assert m.unit == "ms" and m.value > 0 and m.env["method"] == "predictor"
    assert m.env["error"] == report["predictor"] and m.stats["lut_sum"] == table.predict(g)
    path = predictor.save(tmp_path / "p.json")
    again = LatencyPredictor.load(path, table=table)
    assert again.kind == predictor.kind
    assert again.predict(g) == pytest.approx(predictor.predict(g))
    assert again.report["predictor"] == report["predictor"]


def test_predictor_learns_a_systematic_error(table) -> None:
    # When the device is 30% slower than the table plus 0.2 ms, the predictor finds it and the
    # plain table sum does not.
    rng = np.random.default_rng(0)
    space = table.space
    genotypes = list({g.key(): g for g in (space.sample(rng) for _ in range(60))}.values())
    measured = [1.3 * table.predict(g) + 0.2 for g in genotypes]
    predictor = LatencyPredictor(table=table, genotypes=genotypes, measured=measured)
    assert predictor.report["predictor"]["within_5"] == 1.0
    assert predictor.report["lut"]["within_10"] == 0.0
    assert predictor.report["predictor"]["kendall_tau"] > 0.99


def test_too_few_measurements(table) -> None:
    g = table.space.sample(np.random.default_rng(0))
    with pytest.raises(DeviceError, match="at least 10"):
        LatencyPredictor(table=table, genotypes=[g] * 3, measured=[1.0] * 3)
