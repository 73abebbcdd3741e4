"""Calibration by transfer on the NB201 table: a held-out device column predicted from a few
of its values and the other devices' columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from hwnas.errors import ConfigError
from hwnas.profilers.transfer import (
    KnownDevices,
    TransferPredictor,
    architecture_features,
    denoise,
    fit_predict,
    load_known,
    op_counts,
    sample_rows,
)
from hwnas.spaces.nb201 import NB201Space
from hwnas.types import Genotype

NB201_CSV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201_cifar10_hw.csv"


@pytest.fixture(scope="module")
def nb201() -> tuple[KnownDevices, np.ndarray, np.ndarray]:
    """The table's four latency columns, the op counts and the one-hot encodings."""
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    space = NB201Space()
    known = load_known([NB201_CSV], space)
    genotypes = [Genotype("nb201", s) for s in known.specs]
    counts = op_counts(space, genotypes)
    onehot = np.array([space.encode(g) for g in genotypes], dtype=float)
    return known, counts, onehot


@pytest.fixture(scope="module")
def denoised(nb201) -> dict[str, np.ndarray]:
    """Every column of the table denoised once (each from the architecture alone)."""
    known, _, _ = nb201
    space = NB201Space()
    features = architecture_features(space, [Genotype("nb201", s) for s in known.specs])
    return dict(zip(known.columns, denoise(known, features).T))


def _held_out(known: KnownDevices, column: str) -> tuple[KnownDevices, np.ndarray]:
    rest = {c: v for c, v in known.columns.items() if c != column}
    return KnownDevices(specs=known.specs, columns=rest), known.columns[column]


def _scores(predicted: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
    mask = np.ones(len(truth), dtype=bool)
    mask[rows] = False
    p, t = predicted[mask], truth[mask]
    return float(kendalltau(p, t).statistic), float(np.mean(np.abs(p - t) / t <= 0.10))


def test_latency_columns_are_the_known_devices(nb201) -> None:
    known, counts, _ = nb201
    assert list(known.columns) == [
        "lat_fpga_ms",
        "lat_eyeriss_ms",
        "lat_pixel3_ms",
        "lat_raspi4_ms",
    ]
    assert len(known.specs) == 15625 and counts.shape == (15625, 5)
    assert np.all(counts.sum(axis=1) == 6)  # six edges per cell


@pytest.mark.parametrize("column", ["lat_fpga_ms", "lat_eyeriss_ms"])
def test_accelerator_from_20_samples(nb201, column: str) -> None:
    known, counts, onehot = nb201
    others, truth = _held_out(known, column)
    rows = sample_rows(len(truth), 20, seed=0)
    predictor = TransferPredictor(known=others, counts=counts, samples=rows, measured=truth[rows])
    tau, within = _scores(predictor.predict_all(), truth, rows)
    assert tau >= 0.9 and within >= 0.85, (predictor.kind, tau, within)
    # The stored error is a held-out figure of the same order as the real one.
    assert predictor.report["predictor"]["within_10"] >= 0.7
    # Plain ridge on the one-hot encoding, from the same 20 samples, does far worse.
    _, names = others.matrix()
    baseline = fit_predict(
        "onehot", rows, truth[rows], np.arange(len(truth)),
        others=names, counts=counts, onehot=onehot,
    )  # fmt: skip
    base_tau, base_within = _scores(baseline, truth, rows)
    assert base_tau < tau and base_within < within


def test_phone_transfer_beats_no_transfer(nb201) -> None:
    known, counts, onehot = nb201
    others, truth = _held_out(known, "lat_pixel3_ms")
    _, matrix = others.matrix()
    gains = []
    for seed in range(3):
        rows = sample_rows(len(truth), 20, seed=seed)
        predictor = TransferPredictor(
            known=others, counts=counts, samples=rows, measured=truth[rows], seed=seed
        )
        tau, _ = _scores(predictor.predict_all(), truth, rows)
        plain = fit_predict(
            "onehot", rows, truth[rows], np.arange(len(truth)),
            others=matrix, counts=counts, onehot=onehot,
        )  # fmt: skip
        gains.append(tau - _scores(plain, truth, rows)[0])
    assert np.mean(gains) > 0.05, gains


def _pairs(specs: tuple[str, ...]) -> np.ndarray:
    """Row pairs of the cells that are one network (``NB201Space.network_key``)."""
    space = NB201Space()
    rows: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        rows.setdefault(space.network_key(space.parse(spec)), []).append(i)
    return np.array([r for r in rows.values() if len(r) == 2])


@pytest.mark.parametrize("column", ["lat_pixel3_ms", "lat_raspi4_ms"])
def test_denoised_column_times_one_network_alike(nb201, denoised, column: str) -> None:
    # The phones time the two cells of one network apart by their measurement noise; the
    # denoised column, learnt from the architecture, puts them much closer.
    known, _, _ = nb201
    pairs = _pairs(known.specs)
    assert len(pairs) == 1500

    def spread(values: np.ndarray) -> float:
        return float(np.median(np.abs(np.log(values[pairs[:, 0]] / values[pairs[:, 1]]))))

    assert spread(denoised[column]) < 0.6 * spread(known.columns[column])
    # And it stays that device's latency: close to the measured column in rank.
    assert kendalltau(denoised[column], known.columns[column]).statistic > 0.85


def test_denoised_transfer_helps_the_phones_and_keeps_the_accelerators(nb201, denoised) -> None:
    known, counts, _ = nb201
    gains = []
    for column in ("lat_pixel3_ms", "lat_raspi4_ms"):
        others, truth = _held_out(known, column)
        _, raw = others.matrix()
        columns = np.stack([denoised[c] for c in others.columns], axis=1)
        every = np.arange(len(truth))
        for seed in range(10):
            rows = sample_rows(len(truth), 20, seed=seed)
            # The same power law from the same 20 samples, of the raw or the denoised columns.
            fits = [
                fit_predict(kind, rows, truth[rows], every, **features)
                for kind, features in (
                    ("loglog", {"others": raw, "counts": counts}),
                    ("denoised", {"others": raw, "counts": counts, "denoised": columns}),
                )
            ]
            before, after = (_scores(p, truth, rows) for p in fits)
            gains.append((after[0] - before[0], after[1] - before[1]))
    tau_gain, within_gain = np.mean(gains, axis=0)
    assert tau_gain > 0.01 and within_gain > 0.03, gains
    # The predictor offers the denoised kinds only when given the columns; additive devices
    # keep their exact model (op counts) with them on offer.
    others, truth = _held_out(known, "lat_fpga_ms")
    columns = np.stack([denoised[c] for c in others.columns], axis=1)
    rows = sample_rows(len(truth), 20, seed=0)
    common = {"known": others, "counts": counts, "samples": rows, "measured": truth[rows]}
    plain = TransferPredictor(**common)
    predictor = TransferPredictor(denoised=columns, **common)
    assert "denoised" in predictor.models and "denoised" not in plain.models
    assert predictor.report["denoised"] and not plain.report["denoised"]
    assert predictor.kind == "counts"
    assert _scores(predictor.predict_all(), truth, rows)[1] == 1.0


def test_bad_inputs(nb201, tmp_path) -> None:
    known, counts, _ = nb201
    with pytest.raises(ConfigError, match="at least 5"):
        TransferPredictor(known=known, counts=counts, samples=[0, 1], measured=[1.0, 2.0])
    with pytest.raises(ConfigError, match="more than the"):
        sample_rows(10, 20, seed=0)
    table = tmp_path / "t.csv"
    table.write_text("arch_str,acc\n" + f"{known.specs[0]},90\n")
    with pytest.raises(ConfigError, match="no latency columns"):
        load_known([table], NB201Space())
