"""An ensemble of small neural predictors in numpy (BANANAS, White et al., AAAI 2021).

Each of the K members is a one-hidden-layer ReLU network with a linear skip from the inputs
(the skip captures what is additive over layers, e.g. a latency table, from few evaluations;
the hidden layer learns interactions, e.g. NB201's paths). Members differ by initialisation
and by Bayesian-bootstrap weights on the rows; their spread is the uncertainty an acquisition
uses. All members are trained together, batched as 3-d arrays, with full-batch Adam, so a fit
on a few hundred rows takes tens of milliseconds and no torch import.

Targets are transformed per column before fitting: ``rank`` maps values to normal scores of
their ranks (accuracy: a few collapsed networks at 10 % would otherwise dominate a squared
loss), ``standard`` standardises (costs, whose additivity a rank transform would destroy).
Predictions are mapped back to metric units, linearly extrapolated beyond the observed range
so a candidate can be predicted better than everything seen.

Fitting is deterministic for a given seed and data, so a strategy can refit instead of saving
weights; :meth:`MLPEnsemble.to_arrays` / :meth:`MLPEnsemble.from_arrays` move a fitted model
through plain arrays (no pickle) for surrogate benchmark files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import ndtri

TRANSFORMS = ("rank", "standard")
_TAIL = 5  # knots used for the slope of the extrapolation beyond the observed range


class TargetTransform:
    """Monotone map between one metric's values and the scale a predictor is fitted on."""

    def __init__(self, mode: str) -> None:
        if mode not in TRANSFORMS:
            raise ValueError(f"unknown target transform '{mode}'; use one of {TRANSFORMS}")
        self.mode = mode
        self.knots_y = np.zeros(1)  # metric values (increasing)
        self.knots_z = np.zeros(1)  # transformed values (increasing)
        self.mean, self.std = 0.0, 1.0

    def fit(self, y: np.ndarray) -> TargetTransform:
        y = y[np.isfinite(y)]
        if len(y) == 0:
            return self
        self.mean = float(y.mean())
        self.std = float(y.std()) if y.std() > 0 else 1.0
        if self.mode == "rank":
            values, counts = np.unique(y, return_counts=True)
            mid = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mid-ranks of ties
            self.knots_y = values.astype(np.float64)
            self.knots_z = ndtri((mid - 0.5) / len(y))
        return self

    def forward(self, y: np.ndarray) -> np.ndarray:
        if self.mode == "standard":
            return (y - self.mean) / self.std
        return _interp(y, self.knots_y, self.knots_z)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if self.mode == "standard":
            return z * self.std + self.mean
        return _interp(z, self.knots_z, self.knots_y)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "knots_y": self.knots_y,
            "knots_z": self.knots_z,
            "moments": np.array([self.mean, self.std]),
        }

    @classmethod
    def from_arrays(cls, mode: str, arrays: Mapping[str, np.ndarray]) -> TargetTransform:
        out = cls(mode)
        out.knots_y = np.asarray(arrays["knots_y"], dtype=np.float64)
        out.knots_z = np.asarray(arrays["knots_z"], dtype=np.float64)
        out.mean, out.std = (float(v) for v in arrays["moments"])
        return out


def _interp(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Piecewise-linear through the knots, continued linearly beyond both ends."""
    if len(xs) < 2:
        return np.full(np.shape(x), ys[0], dtype=np.float64)
    out = np.interp(x, xs, ys)
    k = min(_TAIL, len(xs) - 1)
    lo = (ys[k] - ys[0]) / max(xs[k] - xs[0], 1e-12)
    hi = (ys[-1] - ys[-1 - k]) / max(xs[-1] - xs[-1 - k], 1e-12)
    out = np.where(x < xs[0], ys[0] + (x - xs[0]) * lo, out)
    return np.where(x > xs[-1], ys[-1] + (x - xs[-1]) * hi, out)


class MLPEnsemble:
    """K small networks predicting every target column; see the module docstring."""

    def __init__(
        self,
        *,
        members: int = 5,
        hidden: int = 32,
        steps: int = 200,
        learning_rate: float = 0.02,
        weight_decay: float = 1e-3,
        ridge: float = 0.1,
        seed: int = 0,
    ) -> None:
        if members < 1 or hidden < 1 or steps < 1:
            raise ValueError("members, hidden and steps must be positive")
        self.members, self.hidden, self.steps = members, hidden, steps
        self.learning_rate, self.weight_decay, self.ridge = learning_rate, weight_decay, ridge
        self.seed = seed
        self.params: dict[str, np.ndarray] = {}
        self.transforms: list[TargetTransform] = []
        self.x_mean = np.zeros(1)
        self.x_scale = np.ones(1)

    def fit(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        transforms: Sequence[str] | None = None,
        *,
        linear_columns: int | None = None,
    ) -> MLPEnsemble:
        """Fit on rows ``X`` (n, d) and targets ``Y`` (n, m); rows with a non-finite target
        are left out of that target's loss.

        For a ``standard`` (cost) target the linear skip is solved exactly, by weighted ridge
        on the first ``linear_columns`` features (the one-hot choices: per-layer costs add up),
        and kept; the hidden layer learns only what that leaves. For a ``rank`` (quality)
        target the skip is trained with the rest.
        """
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        n, d = X.shape
        m = Y.shape[1]
        rng = np.random.default_rng(self.seed)
        self.x_mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.x_scale = np.where(std > 1e-12, std, 1.0)
        Xs = ((X - self.x_mean) / self.x_scale).astype(np.float32)
        self.transforms = [
            TargetTransform(t).fit(Y[:, j]) for j, t in enumerate(transforms or ["standard"] * m)
        ]
        Z = np.stack([t.forward(Y[:, j]) for j, t in enumerate(self.transforms)], axis=1)
        mask = np.isfinite(Z)
        Z = np.where(mask, Z, 0.0)
        K, H = self.members, self.hidden
        p = {
            "w1": rng.normal(0, np.sqrt(2.0 / d), (K, d, H)),
            "b1": np.zeros((K, 1, H)),
            "w2": rng.normal(0, np.sqrt(1.0 / H), (K, H, m)),
            "b2": np.zeros((K, 1, m)),
            "wl": np.zeros((K, d, m)),
        }
        # Bayesian bootstrap: each member weighs the rows by a Dirichlet(1) draw (mean 1).
        weights = (rng.dirichlet(np.ones(n), size=K) * n)[:, :, None] * mask[None]
        trainable = np.ones((1, 1, m))  # 0 for a target whose skip is the ridge solution
        lin = d if linear_columns is None else linear_columns
        for j, t in enumerate(self.transforms):
            if t.mode == "standard" and lin > 0:
                w, b = _ridge(Xs[:, :lin].astype(np.float64), Z[:, j], weights[:, :, j], self.ridge)
                p["wl"][:, :lin, j], p["b2"][:, 0, j] = w, b
                trainable[0, 0, j] = 0.0
        # One flat float32 buffer holds every parameter (views below), so that Adam's update
        # is a handful of array operations per step instead of a handful per parameter: at
        # these sizes the per-call overhead of numpy, not arithmetic, is the cost of a fit.
        flat, p = _flat_views({k: v.astype(np.float32) for k, v in p.items()})
        grad_flat, g = _flat_views({k: np.zeros_like(v) for k, v in p.items()})
        Z = Z.astype(np.float32)
        weights = (weights / max(mask.sum(axis=0).max(), 1.0)).astype(np.float32)
        trainable = trainable.astype(np.float32)
        first = np.zeros_like(flat)
        second = np.zeros_like(flat)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        decay = np.float32(self.weight_decay)
        XsT = np.ascontiguousarray(Xs.T)
        for step in range(1, self.steps + 1):
            pre = Xs @ p["w1"] + p["b1"]  # (K, n, H)
            hid = np.maximum(pre, 0.0)
            out = hid @ p["w2"] + p["b2"] + Xs @ p["wl"]  # (K, n, m)
            grad_out = 2.0 * weights * (out - Z)  # (K, n, m)
            grad_hid = (grad_out @ p["w2"].transpose(0, 2, 1)) * (pre > 0)
            g["w2"][...] = hid.transpose(0, 2, 1) @ grad_out + 2 * decay * p["w2"]
            g["b2"][...] = grad_out.sum(axis=1, keepdims=True) * trainable
            g["wl"][...] = (XsT @ grad_out + 2 * decay * p["wl"]) * trainable
            g["w1"][...] = XsT @ grad_hid + 2 * decay * p["w1"]
            g["b1"][...] = grad_hid.sum(axis=1, keepdims=True)
            lr = self.learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
            first *= beta1
            first += (1 - beta1) * grad_flat
            second *= beta2
            second += (1 - beta2) * grad_flat * grad_flat
            flat -= np.float32(lr) * first / (np.sqrt(second) + eps)
        p = {k: v.copy() for k, v in p.items()}
        self.params = p
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Every member's prediction in metric units: shape (members, n, targets)."""
        Xs = ((np.asarray(X, dtype=np.float64) - self.x_mean) / self.x_scale).astype(np.float32)
        p = self.params
        hid = np.maximum(Xs @ p["w1"] + p["b1"], 0.0)
        Z = (hid @ p["w2"] + p["b2"] + Xs @ p["wl"]).astype(np.float64)
        return np.stack([t.inverse(Z[:, :, j]) for j, t in enumerate(self.transforms)], axis=2)

    # -- plain arrays (no pickle) -----------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {f"net.{k}": v for k, v in self.params.items()}
        out["x_mean"], out["x_scale"] = self.x_mean, self.x_scale
        for j, t in enumerate(self.transforms):
            out.update({f"target{j}.{k}": v for k, v in t.to_arrays().items()})
        return out

    def transform_modes(self) -> list[str]:
        return [t.mode for t in self.transforms]

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], transforms: Sequence[str]
    ) -> MLPEnsemble:
        """A fitted ensemble from :meth:`to_arrays`; KeyError or ValueError if inconsistent."""
        params = {k: np.asarray(arrays[f"net.{k}"], dtype=np.float32) for k in _NET}
        K, d, H = params["w1"].shape
        m = params["w2"].shape[2]
        shapes = {"b1": (K, 1, H), "w2": (K, H, m), "b2": (K, 1, m), "wl": (K, d, m)}
        for k, shape in shapes.items():
            if params[k].shape != shape:
                raise ValueError(f"array net.{k} has shape {params[k].shape}, expected {shape}")
        if len(transforms) != m:
            raise ValueError(f"{len(transforms)} target transforms for {m} targets")
        out = cls(members=K, hidden=H)
        out.params = params
        out.x_mean = np.asarray(arrays["x_mean"], dtype=np.float64)
        out.x_scale = np.asarray(arrays["x_scale"], dtype=np.float64)
        if out.x_mean.shape != (d,) or out.x_scale.shape != (d,):
            raise ValueError(f"input scaling arrays do not have {d} entries")
        out.transforms = [
            TargetTransform.from_arrays(
                mode, {k: arrays[f"target{j}.{k}"] for k in ("knots_y", "knots_z", "moments")}
            )
            for j, mode in enumerate(transforms)
        ]
        return out


_NET = ("w1", "b1", "w2", "b2", "wl")


def _flat_views(arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One flat buffer with the arrays' values, and a view of it shaped like each array."""
    flat = np.concatenate([a.ravel() for a in arrays.values()])
    views, start = {}, 0
    for key, a in arrays.items():
        views[key] = flat[start : start + a.size].reshape(a.shape)
        start += a.size
    return flat, views


def _ridge(
    X: np.ndarray, z: np.ndarray, weights: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per member (rows of ``weights``), weighted ridge weights (K, d) and intercepts (K,)."""
    K, d = len(weights), X.shape[1]
    wl, b = np.zeros((K, d)), np.zeros(K)
    for k in range(K):
        w = weights[k]
        total = max(w.sum(), 1e-12)
        mx, mz = w @ X / total, w @ z / total
        Xc = X - mx
        A = Xc.T @ (Xc * w[:, None]) + alpha * np.eye(d)
        wl[k] = np.linalg.solve(A, Xc.T @ (w * (z - mz)))
        b[k] = mz - mx @ wl[k]
    return wl, b
