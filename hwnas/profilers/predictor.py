"""Learned latency predictor (nn-Meter style) calibrated on end-to-end measurements.

A lookup-table sum misses what happens between blocks (caches, operator fusion, the memory
traffic of a whole network), and misses it differently for each kind of block. The predictor
corrects the sum with a scikit-learn regressor on per-architecture features: the table sum,
the table sums per block kind (kernel, expansion, groups, SE, hardswish, skip) and per stage,
MACs, parameters, activation traffic and depth. Calibration measures random architectures end
to end, interleaved in one session, keeps a held-out share aside, and picks among a few models
(a scaled table sum, ridge regression, gradient boosting) by cross-validation on the rest.
The held-out fidelity (share within +-10% and +-5%, MAPE, Kendall tau) is stored with the
predictor and reported with every prediction.

The predictor file keeps the measurements, not a pickled model: loading refits the chosen
model (milliseconds), so no untrusted code is ever unpickled.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.devices import DeviceProfile
from hwnas.errors import DeviceError
from hwnas.files import atomic_write
from hwnas.hardware import fingerprint
from hwnas.profilers.lut import LatencyTable, read_document
from hwnas.types import Genotype, Measurement

if TYPE_CHECKING:
    from hwnas.spaces.mobilenet_spec import LayerSpec

__all__ = [
    "MODELS",
    "LatencyPredictor",
    "arch_features",
    "calibrate",
    "cross_validated",
    "feature_names",
    "fidelity",
    "measure_architectures",
]

PREDICTOR_FORMAT = 1
MODELS = ("scaled_lut", "ridge", "gbr")


# -- features -------------------------------------------------------------------------------
def _kinds(spec: LayerSpec) -> list[str]:
    if spec.is_skip:
        return ["skip"]
    kinds = [f"k{spec.kernel}", f"e{spec.expansion}"]
    if spec.groups > 1:
        kinds.append("grouped")
    if spec.se:
        kinds.append("se")
    if spec.hswish:
        kinds.append("hs")
    return kinds


def feature_names(table: LatencyTable) -> list[str]:
    """Names of :func:`arch_features`' columns for the table's space."""
    kinds = set()
    for slot in table.space.slot_specs():
        for choice in slot.choices:
            from hwnas.spaces.mobilenet_spec import parse_choice

            block = parse_choice(choice)
            kinds.update(
                ["skip"]
                if block.is_skip
                else [f"k{block.kernel}", f"e{block.expansion}"]
                + ["grouped"] * (block.groups > 1)
                + ["se"] * block.se
                + ["hs"] * block.hswish
            )
    stages = sorted({slot.stage for slot in table.space.slot_specs()})
    return [
        "lut_sum",
        *(f"lut_{k}" for k in sorted(kinds)),
        *(f"lut_stage{s}" for s in stages),
        "macs",
        "params",
        "activations",
        "depth",
        "residuals",
    ]


def arch_features(table: LatencyTable, genotype: Genotype) -> dict[str, float]:
    """Per-architecture features: table sums (total, per block kind, per stage), MACs,
    parameters and activation elements (analytic, convolutions only), depth, residual adds."""
    feats = dict.fromkeys(feature_names(table), 0.0)
    feats["lut_sum"] = table.predict(genotype)
    for spec in table.space.layer_specs(genotype):
        ms = table.layer_ms(spec)
        for kind in _kinds(spec):
            feats[f"lut_{kind}"] += ms
        feats[f"lut_stage{spec.stage}"] += ms
        if spec.is_skip:
            continue
        h, w = table.plan.slot_hw[spec.index]
        ho, wo = -(-h // spec.stride), -(-w // spec.stride)
        hidden = spec.in_channels * spec.expansion
        g = spec.groups
        weights = (
            spec.in_channels * hidden // g
            + hidden * spec.kernel**2
            + hidden * spec.out_channels // g
        )
        feats["params"] += weights
        feats["macs"] += (
            h * w * spec.in_channels * hidden // g
            + ho * wo * hidden * spec.kernel**2
            + ho * wo * hidden * spec.out_channels // g
        )
        feats["activations"] += h * w * (spec.in_channels + hidden) + ho * wo * (
            hidden + spec.out_channels
        )
        feats["depth"] += 1
        feats["residuals"] += float(spec.stride == 1 and spec.in_channels == spec.out_channels)
    return feats


def _matrix(table: LatencyTable, genotypes: Sequence[Genotype]) -> np.ndarray:
    names = feature_names(table)
    return np.array([[arch_features(table, g)[n] for n in names] for g in genotypes], dtype=float)


# -- fidelity -------------------------------------------------------------------------------
def fidelity(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Share within +-10% and +-5%, mean absolute percentage error and Kendall tau."""
    from scipy.stats import kendalltau

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    err = np.abs(p - m) / m
    tau = float(kendalltau(p, m).statistic) if len(m) > 1 else float("nan")
    return {
        "within_10": float(np.mean(err <= 0.10)),
        "within_5": float(np.mean(err <= 0.05)),
        "mape": float(np.mean(err)),
        "kendall_tau": tau,
        "n": float(len(m)),
    }


# -- models ---------------------------------------------------------------------------------
def _make_model(kind: str, seed: int) -> Any:
    """A regressor of log(measured / lut_sum) on features scaled by the table sum."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if kind == "gbr":
        return GradientBoostingRegressor(
            n_estimators=200, max_depth=2, learning_rate=0.05, subsample=0.8, random_state=seed
        )
    raise ValueError(kind)


def _inputs(x: np.ndarray) -> np.ndarray:
    # Shares of the table sum per kind and stage, and sizes: the correction a runtime needs
    # depends on the mix of blocks more than on the total.
    lut = x[:, :1]
    shares = x[:, 1:-5] / lut
    sizes = np.log1p(x[:, -5:])
    return np.hstack([np.log(lut), shares, sizes])


class _Fitted:
    """One fitted model: predicts milliseconds from the feature matrix."""

    def __init__(self, kind: str, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.kind = kind
        target = np.log(y / x[:, 0])
        if kind == "scaled_lut":
            # latency = a * lut_sum + b, least squares.
            design = np.vstack([x[:, 0], np.ones(len(x))]).T
            self.coef = np.linalg.lstsq(design, y, rcond=None)[0]
        else:
            self.model = _make_model(kind, seed).fit(_inputs(x), target)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "scaled_lut":
            return x[:, 0] * self.coef[0] + self.coef[1]
        return x[:, 0] * np.exp(self.model.predict(_inputs(x)))


def _select(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[str, dict[str, float]]:
    """The model kind with the lowest cross-validated MAPE on (x, y), and every kind's MAPE."""
    from sklearn.model_selection import KFold

    folds = KFold(n_splits=min(5, len(y)), shuffle=True, random_state=seed)
    scores = {}
    for kind in MODELS:
        errors = []
        for train, test in folds.split(x):
            fitted = _Fitted(kind, x[train], y[train], seed)
            errors.extend(np.abs(fitted.predict(x[test]) - y[test]) / y[test])
        scores[kind] = float(np.mean(errors))
    return min(scores, key=scores.__getitem__), scores


# -- the predictor --------------------------------------------------------------------------
class LatencyPredictor:
    """A latency table plus a regressor fitted on measured architectures; milliseconds."""

    def __init__(
        self,
        *,
        table: LatencyTable,
        genotypes: Sequence[Genotype],
        measured: Sequence[float],
        kind: str | None = None,
        holdout: float = 0.25,
        seed: int = 0,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if len(genotypes) != len(measured) or len(genotypes) < 10:
            raise DeviceError("a latency predictor needs at least 10 measured architectures")
        self.table = table
        self.genotypes = list(genotypes)
        self.measured = np.asarray(measured, dtype=float)
        self.holdout = holdout
        self.seed = seed
        self.meta = dict(meta or {})
        x = _matrix(table, self.genotypes)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(x))
        n_test = max(1, round(holdout * len(x))) if holdout > 0 else 0
        test, train = order[:n_test], order[n_test:]
        self.report: dict[str, Any] = {}
        if kind is None:
            kind, scores = _select(x[train], self.measured[train], seed)
            self.report["cv_mape"] = scores
        elif kind not in MODELS:
            raise DeviceError(f"unknown predictor model '{kind}'; choose one of {MODELS}")
        self.kind = kind
        self.report["model"] = kind
        if n_test:
            held_out = _Fitted(self.kind, x[train], self.measured[train], seed)
            self.report["lut"] = fidelity(x[test, 0], self.measured[test])
            self.report["predictor"] = fidelity(held_out.predict(x[test]), self.measured[test])
        self.report["n_train"] = len(train)
        self.report["n_test"] = n_test
        # Deployed on all measurements; the held-out figures above are (slightly) pessimistic.
        self._fitted = _Fitted(self.kind, x, self.measured, seed)

    def predict(self, genotype: Genotype) -> float:
        """Predicted milliseconds per batch."""
        return float(self._fitted.predict(_matrix(self.table, [genotype]))[0])

    def predict_many(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        return self._fitted.predict(_matrix(self.table, genotypes))

    def measurement(self, genotype: Genotype, *, device: str | None = None) -> Measurement:
        """:meth:`predict` as a Measurement whose ``env`` carries the held-out error."""
        env = {
            "method": "predictor",
            "model": self.kind,
            "fingerprint": self.meta.get("fingerprint", ""),
            "device": self.meta.get("device", ""),
            "predictor": self.meta.get("path", ""),
            "error": self.report.get("predictor", {}),
        }
        stats = {"lut_sum": self.table.predict(genotype)}
        return Measurement(
            "latency", self.predict(genotype), "ms", device=device, stats=stats, env=env
        )

    # -- files ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.meta.items() if k != "path"}
        return {
            "format": PREDICTOR_FORMAT,
            "kind": self.kind,
            "holdout": self.holdout,
            "seed": self.seed,
            "fidelity": self.report,
            **meta,
            "samples": [
                {"spec": g.spec, "ms": float(ms)} for g, ms in zip(self.genotypes, self.measured)
            ],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_json(), indent=1))
        self.meta["path"] = str(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, table: LatencyTable) -> LatencyPredictor:
        """Read the measurements and refit (deterministic: same seed, same model)."""
        path = Path(path)
        data = read_document(
            path,
            "latency predictor",
            PREDICTOR_FORMAT,
            "recalibrate with `hwnas devices calibrate`",
        )
        space = table.space
        try:
            genotypes = [Genotype(space.name, s["spec"]) for s in data["samples"]]
            measured = [float(s["ms"]) for s in data["samples"]]
            meta = {
                k: v
                for k, v in data.items()
                if k not in ("format", "kind", "holdout", "seed", "fidelity", "samples")
            }
            predictor = cls(
                table=table,
                genotypes=genotypes,
                measured=measured,
                kind=data["kind"],
                holdout=float(data["holdout"]),
                seed=int(data["seed"]),
                meta=meta,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DeviceError(f"latency predictor '{path}' is malformed: {exc!r}") from None
        predictor.meta["path"] = str(path)
        return predictor


def cross_validated(
    table: LatencyTable,
    genotypes: Sequence[Genotype],
    measured: Sequence[float],
    *,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold predictions: each architecture predicted by a predictor (model choice
    included) fitted without it. Their fidelity uses every measurement, not a held-out share."""
    from sklearn.model_selection import KFold

    y = np.asarray(measured, dtype=float)
    out = np.empty(len(y))
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(y):
        fitted = LatencyPredictor(
            table=table,
            genotypes=[genotypes[i] for i in train],
            measured=y[train],
            holdout=0.0,
            seed=seed,
        )
        out[test] = fitted.predict_many([genotypes[i] for i in test])
    return out


# -- calibration ----------------------------------------------------------------------------
def measure_architectures(
    genotypes: Sequence[Genotype],
    profile: DeviceProfile,
    *,
    space: Any,
    num_classes: int,
    input_shape: Sequence[int],
    repeats: int | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Measurement]:
    """End-to-end latency of every architecture, interleaved in one session (drift-fair)."""
    import torch

    from hwnas.profilers.base import pinned_threads

    models = []
    with pinned_threads(profile.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, g in enumerate(genotypes):
            models.append(space.build(g, num_classes=num_classes, in_channels=input_shape[0]))
            if progress is not None:
                progress("build", i + 1, len(genotypes))
    report = (lambda d, t: progress("measure", d, t)) if progress else None
    if profile.runtime in ("onnxruntime", "remote"):
        from hwnas.profilers.ort import export_onnx_bytes, measure_onnx_latencies

        exports = []
        for i, model in enumerate(models):
            exports.append(export_onnx_bytes(model, input_shape, batch_size=profile.batch_size))
            if progress is not None:
                progress("export", i + 1, len(models))
        del models
        return measure_onnx_latencies(
            exports, profile, input_shape, repeats=repeats, seed=seed, progress=report
        )
    from hwnas.profilers.latency import measure_torch_latencies

    return measure_torch_latencies(
        models, input_shape, profile=profile, repeats=repeats, seed=seed, progress=report
    )


def calibrate(
    table: LatencyTable,
    profile: DeviceProfile,
    *,
    samples: int = 200,
    holdout: float = 0.25,
    repeats: int | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> LatencyPredictor:
    """Measure ``samples`` random architectures of the table's space and fit the predictor.

    Architectures are distinct; ``holdout`` of them are kept aside to measure the fidelity.
    """
    import warnings

    from hwnas.profilers.base import SpreadWarning

    space = table.space
    rng = np.random.default_rng(seed)
    genotypes: dict[str, Genotype] = {}
    for _ in range(samples * 50):
        if len(genotypes) >= samples:
            break
        g = space.sample(rng)
        genotypes.setdefault(g.key(), g)
    chosen = list(genotypes.values())
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpreadWarning)
        measurements = measure_architectures(
            chosen,
            profile,
            space=space,
            num_classes=table.plan.num_classes,
            input_shape=table.plan.input_shape,
            repeats=repeats,
            seed=seed,
            progress=progress,
        )
    unstable = sum(issubclass(w.category, SpreadWarning) for w in caught)
    env = dict(measurements[0].env)
    env.pop("warning", None)
    meta = {
        "device": profile.name,
        "fingerprint": fingerprint(profile),
        "table": table.meta.get("path", ""),
        "env": env,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "measure_seconds": round(time.perf_counter() - start, 2),
        "unstable_measurements": unstable,
        "median_rcv": float(np.median([m.stats["rcv"] for m in measurements])),
    }
    predictor = LatencyPredictor(
        table=table,
        genotypes=chosen,
        measured=[m.value for m in measurements],
        holdout=holdout,
        seed=seed,
        meta=meta,
    )
    # The table's own error, measured on the same held-out architectures, travels with it
    # (saved when the caller saves the table again).
    if "lut" in predictor.report:
        table.meta["fidelity"] = predictor.report["lut"]
    return predictor
