"""Calibration by transfer: a new device's latency for every architecture from a few
measurements, using what is known about other devices (the few-shot setting of HELP).

The known devices are the millisecond columns of benchmark tables (HW-NAS-Bench's FPGA,
Eyeriss, Pixel 3, Raspberry Pi 4 ...) and the outputs of earlier calibrations, which have the
same form. With ``n`` architectures measured on the new device, a few small models compete:

* ``counts``: how often each operation occurs (no transfer; additive devices such as
  accelerators are nearly exact with it),
* ``denoised``: a power law of the other devices' *denoised* latencies: each known device's
  column predicted from the architecture alone (gradient-boosted trees fitted on the whole
  column, :func:`denoise`). A measured column carries each architecture's measurement noise
  (HW-NAS-Bench's phones time the same network twice more than 10% apart in 29-39% of cases),
  which a transfer from the raw column passes on; the denoised column keeps what the
  architecture explains,
* ``transfer``: the other devices' latencies, linearly (the naive transfer),
* ``transfer+counts``: both, ridge-regularised,
* ``loglog``, ``loglog+counts`` and ``denoised+counts``: in log space (power laws between
  devices).

The simplest one whose leave-one-out error on the ``n`` measurements is within a standard
error of the lowest is chosen (the one-standard-error rule); its own
error is measured by nested cross-validation (the choice is made again without each fold),
so the stored fidelity is a held-out figure, like :mod:`hwnas.profilers.predictor`'s.
Everything is a few least-squares fits on top of the denoised columns (refitted from the
known tables, deterministically): no model is stored, the file keeps the measurements.
"""

from __future__ import annotations

import csv
import io
import json
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.devices import DeviceProfile
from hwnas.errors import ConfigError
from hwnas.profilers.predictor import fidelity
from hwnas.spaces.base import SearchSpace
from hwnas.types import Genotype

__all__ = [
    "MODELS",
    "NO_TRANSFER",
    "KnownDevices",
    "TransferPredictor",
    "denoise",
    "fit_predict",
    "load_known",
    "op_counts",
]

#: From the simplest to the richest: on a tie the simpler one is chosen. The ``denoised`` kinds
#: take part when the predictor is given denoised columns.
MODELS = (
    "denoised",
    "counts",
    "transfer",
    "loglog",
    "denoised+counts",
    "loglog+counts",
    "transfer+counts",
)
DENOISED = ("denoised", "denoised+counts")
#: Models that use no other device: the comparison for what transfer buys.
NO_TRANSFER = ("counts", "onehot")
_RIDGE_ALPHAS = np.logspace(-4, 3, 15)


@dataclass(frozen=True)
class KnownDevices:
    """Latencies (ms) of known devices over one set of architectures (``specs``)."""

    specs: tuple[str, ...]
    columns: Mapping[str, np.ndarray]
    sources: tuple[str, ...] = ()

    def matrix(self, exclude: Sequence[str] = ()) -> tuple[list[str], np.ndarray]:
        names = [c for c in self.columns if c not in exclude]
        return names, np.stack([self.columns[c] for c in names], axis=1)


def load_known(
    paths: Sequence[str | Path], space: SearchSpace, *, exclude: Sequence[str] = ()
) -> KnownDevices:
    """Every millisecond column of the tables at ``paths``, over the architectures all of them
    have (a later calibration's output is such a table too). ConfigError when none is left."""
    from hwnas.evaluate.table import TabularBenchmark

    columns: dict[str, dict[str, float]] = {}
    common: set[str] | None = None
    for path in paths:
        table = TabularBenchmark(path=path, space=space)
        specs = [g.spec for g in table.genotypes()]
        common = set(specs) if common is None else common & set(specs)
        for column in table.columns:
            if table.units.get(column) != "ms" or column in exclude:
                continue
            name = column if column not in columns else f"{Path(path).stem}:{column}"
            columns[name] = dict(zip(specs, table.values(column)))
    if not columns or not common:
        raise ConfigError(
            "the --transfer-from tables have no latency columns (names ending in _ms) over "
            "common architectures; give a benchmark table such as nb201_cifar10_hw.csv"
        )
    order = tuple(sorted(common))
    data = {c: np.array([v[s] for s in order], dtype=float) for c, v in columns.items()}
    bad = [c for c, v in data.items() if not np.all(np.isfinite(v) & (v > 0))]
    for c in bad:  # a column with gaps or zeros cannot be a device's latency
        del data[c]
    if not data:
        raise ConfigError("every latency column of the --transfer-from tables has gaps or zeros")
    return KnownDevices(specs=order, columns=data, sources=tuple(str(p) for p in paths))


def op_counts(space: SearchSpace, genotypes: Sequence[Genotype]) -> np.ndarray:
    """How often each choice (operation) occurs in each architecture; the one-hot encoding
    for spaces without per-position choices."""
    if not hasattr(space, "choices"):
        return np.array([space.encode(g) for g in genotypes], dtype=float)
    rows = [space.choices(g) for g in genotypes]  # type: ignore[attr-defined]
    names = sorted({c for row in rows for c in row})
    return np.array([[row.count(n) for n in names] for row in rows], dtype=float)


def denoise(known: KnownDevices, features: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Each known device's latency (ms) as the architecture alone predicts it, in
    ``known.matrix()`` column order: gradient-boosted trees on log latency, fitted on the whole
    column (every row of ``features`` is an architecture of ``known.specs``). Uses the known
    devices only, so held-out figures of a new device stay held out."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    _, matrix = known.matrix()
    out = np.empty_like(matrix)
    for j in range(matrix.shape[1]):
        model = HistGradientBoostingRegressor(max_iter=300, random_state=seed)
        out[:, j] = np.exp(model.fit(features, np.log(matrix[:, j])).predict(features))
    return out


def architecture_features(space: SearchSpace, genotypes: Sequence[Genotype]) -> np.ndarray:
    """What :func:`denoise` learns from: the space's predictor features and the op counts."""
    encoded = np.array([space.predictor_features(g) for g in genotypes], dtype=float)
    return np.hstack([encoded, op_counts(space, genotypes)])


# -- the models -----------------------------------------------------------------------------
def _design(
    kind: str,
    others: np.ndarray,
    counts: np.ndarray,
    onehot: np.ndarray | None,
    denoised: np.ndarray | None,
):
    """(features, ridge?, log target?) of a model kind."""
    if kind.startswith("denoised"):
        assert denoised is not None
        if kind == "denoised":
            return np.log(denoised), False, True
        if kind == "denoised+counts":
            return np.hstack([np.log(denoised), counts]), True, True
    if kind == "counts":
        return counts, True, False
    if kind == "onehot":
        assert onehot is not None
        return onehot, True, False
    if kind == "transfer":
        return others, False, False
    if kind == "transfer+counts":
        return np.hstack([others, counts]), True, False
    if kind == "loglog":
        return np.log(others), False, True
    if kind == "loglog+counts":
        return np.hstack([np.log(others), counts]), True, True
    raise ValueError(kind)


def _fit(x: np.ndarray, y: np.ndarray, ridge: bool, log: bool, x_new: np.ndarray) -> np.ndarray:
    target = np.log(y) if log else y
    if ridge:
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), RidgeCV(alphas=_RIDGE_ALPHAS))
        predicted = model.fit(x, target).predict(x_new)
    else:
        design = np.hstack([x, np.ones((len(x), 1))])
        coef = np.linalg.lstsq(design, target, rcond=None)[0]
        predicted = np.hstack([x_new, np.ones((len(x_new), 1))]) @ coef
    if log:
        return np.exp(predicted)
    return np.maximum(predicted, 0.05 * float(np.min(y)))  # latencies stay positive


def fit_predict(
    kind: str,
    train: np.ndarray,
    measured: np.ndarray,
    rows: np.ndarray,
    *,
    others: np.ndarray,
    counts: np.ndarray,
    onehot: np.ndarray | None = None,
    denoised: np.ndarray | None = None,
) -> np.ndarray:
    """Milliseconds at ``rows`` of model ``kind`` fitted on ``measured`` at ``train``
    (row indices into ``others`` / ``counts``)."""
    x, ridge, log = _design(kind, others, counts, onehot, denoised)
    return _fit(x[train], measured, ridge, log, x[rows])


def _loo(kind: str, train: np.ndarray, measured: np.ndarray, **features: Any) -> np.ndarray:
    out = np.empty(len(train))
    for i in range(len(train)):
        keep = np.arange(len(train)) != i
        out[i] = fit_predict(kind, train[keep], measured[keep], train[i : i + 1], **features)[0]
    return out


def choose(
    train: np.ndarray, measured: np.ndarray, models: Sequence[str], **features: Any
) -> tuple[str, dict[str, float]]:
    """The simplest model (in ``models``' order) whose leave-one-out MAPE is within one
    standard error of the best one's, and every model's MAPE. With 10-20 measurements the
    scores are noisy: the simpler model generalises better when they tie."""
    errors = {k: np.abs(_loo(k, train, measured, **features) - measured) / measured for k in models}
    scores = {k: float(np.mean(e)) for k, e in errors.items()}
    best = min(scores, key=scores.__getitem__)
    margin = float(np.std(errors[best], ddof=1) / np.sqrt(len(measured)))
    chosen = next(k for k in models if scores[k] <= scores[best] + margin)
    return chosen, scores


class TransferPredictor:
    """A new device's latency (ms) for every architecture of ``known``, from ``measured`` at
    the rows ``samples``. ``report`` holds the chosen model, every model's leave-one-out MAPE
    and the nested cross-validated fidelity (within +-10%, +-5%, MAPE, Kendall tau).
    ``denoised`` (:func:`denoise` of ``known``) adds the ``denoised`` kinds to ``models``."""

    def __init__(
        self,
        *,
        known: KnownDevices,
        counts: np.ndarray,
        samples: Sequence[int],
        measured: Sequence[float],
        models: Sequence[str] = MODELS,
        folds: int = 5,
        seed: int = 0,
        denoised: np.ndarray | None = None,
    ) -> None:
        y = np.asarray(measured, dtype=float)
        if len(samples) != len(y) or len(y) < 5:
            raise ConfigError("calibration by transfer needs at least 5 measured architectures")
        if not np.all(y > 0):
            raise ConfigError("measured latencies must be positive")
        self.known = known
        self.samples = np.asarray(samples, dtype=int)
        self.measured = y
        self.names, others = known.matrix()
        if denoised is None:
            models = [m for m in models if m not in DENOISED]
        self.models = tuple(models)
        self._features = {"others": others, "counts": counts, "denoised": denoised}
        self.kind, scores = choose(self.samples, y, self.models, **self._features)
        self.report: dict[str, Any] = {"model": self.kind, "cv_mape": scores}
        self.report["predictor"] = fidelity(self._nested(folds, seed), y)
        self.report["method"] = f"{folds}-fold nested cross-validation over the measurements"
        self.report["n_train"] = len(y)
        self.report["known_devices"] = self.names
        self.report["denoised"] = denoised is not None

    def _nested(self, folds: int, seed: int) -> np.ndarray:
        """Out-of-fold predictions, the model chosen again without each fold."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.samples))
        out = np.empty(len(self.samples))
        for fold in np.array_split(order, min(folds, len(order))):
            keep = np.setdiff1d(order, fold)
            kind, _ = choose(self.samples[keep], self.measured[keep], self.models, **self._features)
            out[fold] = fit_predict(
                kind, self.samples[keep], self.measured[keep], self.samples[fold], **self._features
            )
        return out

    def predict_all(self) -> np.ndarray:
        """Milliseconds for every architecture of ``known`` (in ``known.specs`` order)."""
        rows = np.arange(len(self.known.specs))
        return fit_predict(self.kind, self.samples, self.measured, rows, **self._features)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.kind,
            "fidelity": self.report,
            "sources": list(self.known.sources),
            "samples": [
                {"spec": self.known.specs[i], "ms": float(ms)}
                for i, ms in zip(self.samples, self.measured)
            ],
        }


def sample_rows(n_rows: int, samples: int, seed: int) -> np.ndarray:
    """``samples`` distinct row indices, drawn with ``seed``."""
    if samples > n_rows:
        raise ConfigError(f"--samples {samples} is more than the {n_rows} architectures known")
    return np.sort(np.random.default_rng(seed).choice(n_rows, samples, replace=False))


def column_name(device: str) -> str:
    """The output column of a device: ``lat_<name>_ms`` (safe characters only)."""
    safe = "".join(c if c.isalnum() else "_" for c in device.lower()).strip("_") or "device"
    return f"lat_{safe}_ms"


# -- a calibration run ----------------------------------------------------------------------
TRANSFER_FORMAT = 1


def calibrate_transfer(
    profile: DeviceProfile,
    space: SearchSpace,
    sources: Sequence[str | Path],
    *,
    samples: int = 20,
    num_classes: int = 10,
    input_shape: Sequence[int] | None = None,
    repeats: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[TransferPredictor, Path]:
    """Measure ``samples`` architectures of the ``sources`` tables on ``profile`` (here or on
    its boards), predict every architecture, and write the table ``out`` (CSV: the first
    source's columns plus ``lat_<device>_ms``) with its JSON record (fidelity, measurements).
    Nothing is written when measuring fails."""
    from hwnas.files import atomic_write
    from hwnas.hardware import fingerprint, require_available
    from hwnas.profilers.base import SpreadWarning
    from hwnas.profilers.lut import cache_dir
    from hwnas.profilers.predictor import measure_architectures

    if profile.runtime == "table":
        raise ConfigError(f"device '{profile.name}' is a table: calibrate on a device you can run")
    require_available(profile)
    column = column_name(profile.name)
    known = load_known(sources, space, exclude=[column])
    rows = sample_rows(len(known.specs), samples, seed)
    genotypes = [Genotype(space.name, known.specs[i]) for i in rows]
    shape = tuple(input_shape or space.input_shape)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Counted in the record (unstable_measurements), not printed once per architecture.
        warnings.simplefilter("ignore", SpreadWarning)
        measured = measure_architectures(
            genotypes,
            profile,
            space=space,
            num_classes=num_classes,
            input_shape=shape,
            repeats=repeats,
            seed=seed,
            progress=progress,
        )
    every = [Genotype(space.name, s) for s in known.specs]
    predictor = TransferPredictor(
        known=known,
        counts=op_counts(space, every),
        samples=rows,
        measured=[m.value for m in measured],
        seed=seed,
        denoised=denoise(known, architecture_features(space, every)),
    )
    predicted = predictor.predict_all()
    if out is None:
        name = f"transfer-{profile.name}-{space.name}-{fingerprint(profile)}.csv"
        out = cache_dir() / "transfer" / name
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, _table_text(sources[0], space, known.specs, column, predicted))
    record = {
        "format": TRANSFER_FORMAT,
        "device": profile.name,
        "fingerprint": fingerprint(profile),
        "profile": profile.to_json(),
        "space": space.name,
        "space_config": space.config(),
        "column": column,
        "table": str(out),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "measure_seconds": round(time.perf_counter() - start, 2),
        **predictor.to_json(),
        "unstable_measurements": sum("warning" in m.env for m in measured),
        "boards": sorted({str(m.env.get("board", m.env.get("cpu", ""))) for m in measured}),
    }
    for entry, m in zip(record["samples"], measured):
        entry["stats"] = dict(m.stats)
        if "board" in m.env:
            entry["board"] = m.env["board"]
    atomic_write(out.with_suffix(".json"), json.dumps(record, indent=1))
    return predictor, out


def _table_text(
    first: str | Path, space: SearchSpace, specs: Sequence[str], column: str, values: np.ndarray
) -> str:
    """The first source table's columns for ``specs``, plus the predicted column (CSV)."""
    from hwnas.evaluate.table import TabularBenchmark

    table = TabularBenchmark(path=first, space=space)
    names = [c for c in table.columns if c != column]
    lookup = {g.spec: g for g in table.genotypes()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["arch_str", *names, column])
    for spec, value in zip(specs, values):
        row = table.query(lookup[spec], names)
        writer.writerow([spec, *(row[n].value for n in names), f"{value:.6g}"])
    return buffer.getvalue()
