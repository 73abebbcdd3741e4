"""Surrogate benchmarks: a predictor fitted on a table, answering for every architecture.

``hwnas surrogate fit TABLE --space S --out FILE`` fits an :class:`MLPEnsemble` on part of a
tabular benchmark and measures it on the rest (Kendall tau and mean absolute error per
metric); ``--benchmark surrogate:FILE`` then evaluates any architecture of the space with the
ensemble's mean, as NAS-Bench-301 does for spaces too large to tabulate. Every measurement
carries the ensemble's spread and the surrogate's held-out error in its ``stats``, so a run
records how far its numbers can be trusted.

The file is one ``.npz`` archive of plain arrays plus a ``meta`` entry holding JSON text; it is
read with ``allow_pickle=False`` and checked entry by entry, so a corrupt or hostile file fails
with one line instead of running code.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import BenchmarkError
from hwnas.evaluate.table import TabularBenchmark
from hwnas.files import atomic_write
from hwnas.spaces.base import SearchSpace
from hwnas.surrogates.mlp import TRANSFORMS, MLPEnsemble
from hwnas.types import Genotype, Measurement

PREFIX = "surrogate:"
FORMAT = "hwnas-surrogate"
VERSION = 1
_QUALITY_WORDS = ("acc", "err", "loss", "top1", "top5")


def features(space: SearchSpace, genotype: Genotype) -> tuple[np.ndarray, int]:
    """The encoding (one-hot choices, where costs add up) followed by the rest of the
    space's predictor features (NB201: the path encoding), and the encoding's length."""
    code = space.encode(genotype).astype(np.float32)
    extra = space.predictor_features(genotype).astype(np.float32)
    if len(extra) >= len(code) and np.array_equal(extra[: len(code)], code):
        return extra, len(code)
    return np.concatenate([code, extra]), len(code)


def transform_for(metric: str) -> str:
    """Ranks for accuracy-like metrics (robust to collapsed networks), values for costs."""
    name = metric.lower()
    return "rank" if any(word in name for word in _QUALITY_WORDS) else "standard"


class SurrogateBenchmark:
    """A fitted surrogate: ``query(genotype, metrics)`` like :class:`TabularBenchmark`."""

    def __init__(
        self,
        *,
        path: Path,
        space: SearchSpace,
        model: MLPEnsemble,
        metrics: Sequence[str],
        units: dict[str, str],
        linear_columns: int,
        fidelity: dict[str, dict[str, float]],
        meta: dict[str, Any],
    ) -> None:
        self.path = path
        self.space = space
        self.model = model
        self.metrics = list(metrics)
        self.units = dict(units)
        self.linear_columns = linear_columns
        self.fidelity = fidelity
        self.meta = meta
        self._cache: dict[str, np.ndarray] = {}

    # -- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        table: TabularBenchmark,
        *,
        metrics: Sequence[str] | None = None,
        train_fraction: float = 0.9,
        seed: int = 0,
        members: int = 5,
        hidden: int = 64,
        steps: int = 400,
    ) -> SurrogateBenchmark:
        """Fit on a random ``train_fraction`` of the table's rows; the held-out error is
        measured on all the other rows."""
        from scipy.stats import kendalltau

        space = table.space
        metrics = list(metrics or table.columns)
        unknown = [m for m in metrics if m not in table.columns]
        if unknown:
            raise BenchmarkError(
                f"table '{table.path.name}' has no metric {', '.join(unknown)}; "
                f"its metrics are: {', '.join(table.columns)}"
            )
        if not 0.0 < train_fraction < 1.0:
            raise BenchmarkError(
                "train fraction must be between 0 and 1 (the rest measures the error)"
            )
        genotypes = table.genotypes()
        rows = [features(space, g) for g in genotypes]
        X = np.array([r[0] for r in rows])
        linear = rows[0][1] if rows else 0
        Y = np.column_stack([table.values(m) for m in metrics])
        order = np.random.default_rng(seed).permutation(len(genotypes))
        n_train = round(train_fraction * len(genotypes))
        if n_train < 2 or n_train >= len(genotypes):
            raise BenchmarkError(
                f"table '{table.path.name}' has {len(genotypes)} rows: too few to fit on "
                f"{train_fraction:.0%} and measure on the rest"
            )
        train, test = order[:n_train], order[n_train:]
        modes = [transform_for(m) for m in metrics]
        model = MLPEnsemble(members=members, hidden=hidden, steps=steps, seed=seed).fit(
            X[train], Y[train], modes, linear_columns=linear
        )
        predicted = model.predict(X[test]).mean(axis=0)
        fidelity = {}
        for j, m in enumerate(metrics):
            ok = np.isfinite(Y[test, j])
            tau = kendalltau(predicted[ok, j], Y[test, j][ok])[0]
            fidelity[m] = {
                "kendall_tau": float(tau),
                "mae": float(np.abs(predicted[ok, j] - Y[test, j][ok]).mean()),
                "held_out": int(ok.sum()),
            }
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "space": space.name,
            "space_options": space.config(),
            "table": table.path.name,
            "rows": len(genotypes),
            "trained_on": int(n_train),
            "train_fraction": train_fraction,
            "seed": seed,
            "metrics": metrics,
            "transforms": modes,
            "units": {m: table.units[m] for m in metrics},
            "features": int(X.shape[1]),
            "linear_columns": int(linear),
            "fidelity": fidelity,
        }
        return cls(
            path=Path(f"{table.path.stem}.surrogate.npz"),
            space=space,
            model=model,
            metrics=metrics,
            units=meta["units"],
            linear_columns=linear,
            fidelity=fidelity,
            meta=meta,
        )

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """One ``.npz`` of arrays and the JSON metadata, written atomically."""
        arrays = dict(self.model.to_arrays())
        arrays["meta"] = np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        self.path = atomic_write(Path(path), buffer.getvalue())
        return self.path

    @classmethod
    def load(cls, path: str | os.PathLike[str], space: SearchSpace) -> SurrogateBenchmark:
        """Read a file written by :meth:`save`; BenchmarkError (one line) if it is not one,
        or was fitted for another space."""
        path = Path(path)
        bad = f"surrogate file '{path}'"
        if not path.is_file():
            raise BenchmarkError(
                f"{bad} does not exist; write one with `hwnas surrogate fit TABLE --space S "
                "--out FILE`"
            )
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise BenchmarkError(f"{bad} is corrupt or not a surrogate: {exc}") from None
        meta = _meta(arrays.pop("meta", None), bad)
        if meta["space"] != space.name or meta.get("space_options") != space.config():
            raise BenchmarkError(
                f"{bad} was fitted for space '{meta['space']}' {meta.get('space_options')}, "
                f"not '{space.name}' {space.config()}; pass --space {meta['space']}"
            )
        try:
            model = MLPEnsemble.from_arrays(arrays, meta["transforms"])
        except (KeyError, ValueError, TypeError) as exc:
            raise BenchmarkError(f"{bad} has bad arrays: {exc}") from None
        if model.params["w1"].shape[1] != meta["features"]:
            raise BenchmarkError(f"{bad} has weights for another feature size")
        return cls(
            path=path,
            space=space,
            model=model,
            metrics=meta["metrics"],
            units=meta["units"],
            linear_columns=int(meta["linear_columns"]),
            fidelity=meta["fidelity"],
            meta=meta,
        )

    # -- answering -------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return list(self.metrics)

    def predict(self, genotype: Genotype) -> np.ndarray:
        """(members, metrics) for one architecture of the space."""
        self.space.validate(genotype)
        cached = self._cache.get(genotype.spec)
        if cached is None:
            x, _ = features(self.space, genotype)
            if len(x) != self.meta["features"]:
                raise BenchmarkError(
                    f"surrogate '{self.path.name}' expects {self.meta['features']} features "
                    f"for '{genotype.spec}', the space gives {len(x)}"
                )
            cached = self.model.predict(x[None])[:, 0, :]
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[genotype.spec] = cached
        return cached

    def query(self, genotype: Genotype, metrics: Iterable[str]) -> dict[str, Measurement]:
        members = self.predict(genotype)
        out = {}
        for m in metrics:
            j = self.metrics.index(m)
            error = self.fidelity.get(m, {})
            out[m] = Measurement(
                m,
                float(members[:, j].mean()),
                self.units[m],
                device=f"surrogate:{self.path.name}",
                stats={
                    "ensemble_std": float(members[:, j].std()),
                    "heldout_kendall_tau": float(error.get("kendall_tau", float("nan"))),
                    "heldout_mae": float(error.get("mae", float("nan"))),
                },
            )
        return out


def _meta(raw: np.ndarray | None, bad: str) -> dict[str, Any]:
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise BenchmarkError(f"{bad} has no metadata; it was not written by hwnas")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkError(f"{bad} has corrupt metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BenchmarkError(f"{bad} is not an hwnas surrogate")
    if meta.get("version") != VERSION:
        raise BenchmarkError(
            f"{bad} has format version {meta.get('version')}; this hwnas reads {VERSION}"
        )
    metrics, transforms = meta.get("metrics"), meta.get("transforms")
    ok = (
        isinstance(metrics, list)
        and metrics
        and all(isinstance(m, str) for m in metrics)
        and isinstance(transforms, list)
        and len(transforms) == len(metrics)
        and all(t in TRANSFORMS for t in transforms)
        and isinstance(meta.get("units"), dict)
        and set(meta["units"]) >= set(metrics)
        and isinstance(meta.get("fidelity"), dict)
        and isinstance(meta.get("features"), int)
        and isinstance(meta.get("linear_columns"), int)
        and isinstance(meta.get("space"), str)
    )
    if not ok:
        raise BenchmarkError(f"{bad} has incomplete metadata; refit it with this hwnas")
    return meta


def open_benchmark(text: str, space: SearchSpace) -> TabularBenchmark | SurrogateBenchmark:
    """The run's ``--benchmark``: a table, or ``surrogate:FILE``."""
    if text.startswith(PREFIX):
        return SurrogateBenchmark.load(text[len(PREFIX) :], space)
    return TabularBenchmark(path=text, space=space)


def resolve_benchmark(text: str | os.PathLike[str]) -> str:
    """An absolute form of ``--benchmark`` for the run's config (keeps the prefix)."""
    text = str(text)
    if text.startswith(PREFIX):
        return PREFIX + str(Path(text[len(PREFIX) :]).resolve())
    return str(Path(text).resolve())
