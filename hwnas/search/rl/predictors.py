"""Performance-simulation networks: an ensemble that predicts metrics from a genotype.

Each of the K members is ``interaction ridge + GRU embedding -> heads``. The shared GRU
embedding of the layer sequence feeds two heads, the accuracy network (quality metrics) and
the resource network (latency, parameters, training time ...). Under them, a closed-form
ridge regression on the layer choices, their pairs and the cheap costs captures from a
handful of evaluations what is additive over layers (a latency table or a parameter count is
exactly that) and the pairwise interactions that dominate accuracy (NB201: which edges form a
path); the networks learn what remains from its residuals. The ridge part is solved in its
dual form, with the kernel ``w1 * same + w2 * same (same - 1) / 2 + wc * <cheap> + w0``
where ``same`` is the number of positions two genotypes agree on: that is the inner product
of one-hot and pairwise one-hot features, so no feature matrix is ever built.

Members differ by initialisation and by Bayesian bootstrap weights on the evaluations; their
spread is the uncertainty screening uses. Targets are transformed per metric before fitting:
``rank`` maps values to normal scores of their ranks (accuracy: a few collapsed networks at
10 % would otherwise dominate a squared loss; ranks double the Kendall tau at 100 NB201
evaluations), ``standard`` standardises (resources, whose additivity a rank transform would
destroy). Predictions are mapped back to metric units, linearly extrapolated beyond the
observed range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.linalg import cho_factor, cho_solve
from scipy.special import ndtri

from hwnas.search.rl.embedding import EnsembleGRU, EnsembleLinear
from hwnas.search.rl.state import tensors_from_text, tensors_to_text
from hwnas.search.rl.tokens import SpaceCodec

TRANSFORMS = ("rank", "standard")
# Kernel scales tried by leave-one-out, and how many of the latest rows that uses.
_SCALES = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
_LOO_ROWS = 200


class TargetTransform:
    """Monotone map between a metric's values and the scale a predictor is fitted on."""

    def __init__(self, mode: str) -> None:
        if mode not in TRANSFORMS:
            raise ValueError(f"unknown target transform '{mode}'; use one of {TRANSFORMS}")
        self.mode = mode
        self.knots_x = np.zeros(1)  # transformed values (increasing)
        self.knots_y = np.zeros(1)  # metric values
        self.mean, self.std = 0.0, 1.0

    def fit(self, y: np.ndarray) -> None:
        y = y[np.isfinite(y)]
        if len(y) == 0:
            return
        if self.mode == "standard":
            self.mean = float(y.mean())
            self.std = float(y.std()) if y.std() > 0 else 1.0
            return
        values, counts = np.unique(y, return_counts=True)
        mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mid-ranks of ties
        self.knots_x = ndtri((mid_ranks - 0.5) / len(y))
        self.knots_y = values.astype(np.float64)

    def forward(self, y: np.ndarray) -> np.ndarray:
        if self.mode == "standard":
            return (y - self.mean) / self.std
        if len(self.knots_x) < 2:
            return np.zeros_like(y, dtype=np.float64)
        return np.interp(y, self.knots_y, self.knots_x)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if self.mode == "standard":
            return z * self.std + self.mean
        xs, ys = self.knots_x, self.knots_y
        if len(xs) < 2:
            return np.full_like(z, ys[0], dtype=np.float64)
        out = np.interp(z, xs, ys)
        # Linear tails through the outer fifth of the knots: a candidate predicted beyond the
        # best seen must look better than it, or screening could never extend the front.
        k = max(1, len(xs) // 5)
        low_slope = (ys[k] - ys[0]) / max(xs[k] - xs[0], 1e-9)
        high_slope = (ys[-1] - ys[-1 - k]) / max(xs[-1] - xs[-1 - k], 1e-9)
        out = np.where(z < xs[0], ys[0] + (z - xs[0]) * low_slope, out)
        return np.where(z > xs[-1], ys[-1] + (z - xs[-1]) * high_slope, out)

    def state(self) -> dict[str, Any]:
        return {
            "x": self.knots_x.tolist(),
            "y": self.knots_y.tolist(),
            "mean": self.mean,
            "std": self.std,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.knots_x = np.array(state["x"], dtype=np.float64)
        self.knots_y = np.array(state["y"], dtype=np.float64)
        self.mean, self.std = float(state["mean"]), float(state["std"])


class _DeepPart(torch.nn.Module):
    """Shared embedding, one head per role (the accuracy and the resource network)."""

    def __init__(
        self,
        members: int,
        tokens: int,
        cheap: int,
        hidden: int,
        roles: Sequence[str],
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.encoder = EnsembleGRU(members, tokens, hidden, generator=generator)
        self.roles = list(dict.fromkeys(roles))
        columns = [[i for i, r in enumerate(roles) if r == role] for role in self.roles]
        self.order = np.argsort(np.concatenate(columns)).tolist()
        self.heads = torch.nn.ModuleList()
        for cols in columns:
            head = torch.nn.ModuleList(
                [
                    EnsembleLinear(members, 2 * hidden + cheap, hidden, generator=generator),
                    EnsembleLinear(members, hidden, len(cols), generator=generator),
                ]
            )
            with torch.no_grad():  # start near zero: the ridge part carries the first rounds
                head[1].weight.mul_(0.1)
                head[1].bias.zero_()
            self.heads.append(head)

    def forward(self, tokens: torch.Tensor, cheap: torch.Tensor) -> torch.Tensor:
        embedding = self.encoder(tokens)
        members = embedding.shape[0]
        features = torch.cat([embedding, cheap.expand(members, -1, -1)], dim=-1)
        outputs = [out(torch.relu(hidden(features))) for hidden, out in self.heads]
        return torch.cat(outputs, dim=-1)[..., self.order]


class Predictor:
    """An ensemble predicting ``metrics`` (raw metric values) for index rows of a space."""

    def __init__(
        self,
        *,
        codec: SpaceCodec,
        metrics: Sequence[str],
        roles: Sequence[str],
        transforms: Sequence[str],
        members: int,
        hidden: int,
        ridge_alpha: float,
        pair_weight: float,
        generator: torch.Generator,
    ) -> None:
        self.codec = codec
        self.metrics = list(metrics)
        self.members = members
        # Kernel weights per metric: first order, pairs, cheap costs (scaled to ~[0, 1]) and
        # intercept (nearly unpenalised). Resources get no pairs: they are additive over
        # layers, and pair terms only blur them. Each metric's overall scale (the inverse of
        # the ridge penalty) is chosen by leave-one-out error at every fit.
        accuracy = (1.0 / ridge_alpha, pair_weight / ridge_alpha, 9.0 / ridge_alpha, 100.0)
        resource = (1.0 / ridge_alpha, 0.0, 9.0 / ridge_alpha, 100.0)
        self.kernels = [accuracy if r == "accuracy" else resource for r in roles]
        self.scales = [1.0] * len(self.metrics)
        self.transforms = [TargetTransform(t) for t in transforms]
        self.deep = _DeepPart(members, codec.token_size, codec.cheap_size, hidden, roles, generator)
        self.train_idx = np.zeros((0, codec.positions), dtype=np.int64)
        self.dual = np.zeros((members, 0, len(self.metrics)))
        self.fitted = 0  # evaluations the current weights were fitted on
        self._text: str | None = None  # cached serialisation of the weights
        # Cholesky factors of (K + I) per kernel, for posterior variances; recomputed from the
        # training rows when missing (after a load), so they stay out of the state.
        self._factors: dict[tuple, tuple[np.ndarray, bool]] = {}

    # -- features --------------------------------------------------------------------------
    def kernels_between(self, a: np.ndarray, b: np.ndarray) -> dict[tuple, np.ndarray]:
        """(len(a), len(b)) kernel between index rows, for each distinct kernel weighting."""
        same = np.zeros((len(a), len(b)))
        for p in range(self.codec.positions):  # per position: no (Na, Nb, P) temporary
            same += a[:, p, None] == b[None, :, p]
        cheap = 0.0
        if self.codec.cheap_size:
            ca = self.codec.cheap_batch(a).astype(np.float64)
            cheap = ca @ self.codec.cheap_batch(b).astype(np.float64).T
        pairs = same * (same - 1.0) / 2.0
        return {
            (w1, w2, wc, w0): w1 * same + w2 * pairs + wc * cheap + w0
            for w1, w2, wc, w0 in dict.fromkeys(self.kernels)
        }

    def _linear(self, grams: dict[tuple, np.ndarray]) -> np.ndarray:
        """(K, N, T) ridge predictions from the kernels against the training rows."""
        out = np.zeros((self.members, next(iter(grams.values())).shape[0], len(self.metrics)))
        for t, weights in enumerate(self.kernels):
            gram = self.scales[t] * grams[weights]
            out[:, :, t] = np.einsum("nm,km->kn", gram, self.dual[:, :, t])
        return out

    def _choose_scales(
        self, grams: dict[tuple, np.ndarray], z: np.ndarray, observed: np.ndarray
    ) -> None:
        """Per metric, the kernel scale with the least leave-one-out error (closed form, on
        the latest rows): additive resources end up nearly unpenalised, so a latency table
        is learnt exactly, while accuracy stays smooth."""
        for t, weights in enumerate(self.kernels):
            rows = np.flatnonzero(observed[:, t])[-_LOO_ROWS:]
            if len(rows) < 5:
                continue
            values, vectors = np.linalg.eigh(grams[weights][np.ix_(rows, rows)])
            projected = vectors.T @ z[rows, t]
            squares = vectors**2
            errors = []
            for scale in _SCALES:
                shrink = 1.0 / (scale * np.maximum(values, 0.0) + 1.0)
                residual = vectors @ (shrink * projected)
                errors.append(float(np.mean((residual / (squares @ shrink)) ** 2)))
            self.scales[t] = _SCALES[int(np.argmin(errors))]

    def _inputs(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.from_numpy(self.codec.token_batch(idx))
        cheap = torch.from_numpy(self.codec.cheap_batch(idx))[None]
        return tokens, cheap

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        idx: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        *,
        steps: int,
        lr: float,
        batch: int,
        generator: torch.Generator,
    ) -> None:
        """Refit on all evaluations: ``y`` (N, metrics) raw values (NaN = missing),
        ``weights`` (members, N) bootstrap weights. The networks continue from their weights."""
        for t, transform in enumerate(self.transforms):
            transform.fit(y[:, t])
        z = np.stack([tr.forward(y[:, t]) for t, tr in enumerate(self.transforms)], axis=1)
        observed = np.isfinite(z)
        z = np.where(observed, z, 0.0)
        grams = self.kernels_between(idx, idx)
        self.train_idx = idx.copy()
        self._factors = {}
        self._choose_scales(grams, z, observed)
        self.dual = self._ridge(grams, z, observed, weights)
        residual = z[None] - self._linear(grams)
        self._train_deep(idx, residual, observed, weights, steps, lr, batch, generator)
        self.fitted = len(idx)
        self._text = None

    def _ridge(
        self,
        grams: dict[tuple, np.ndarray],
        z: np.ndarray,
        observed: np.ndarray,
        weights: np.ndarray,
    ) -> np.ndarray:
        """Dual coefficients (K, N, T) of weighted kernel ridge: f(x) = k(x, train) @ dual."""
        n, targets = z.shape
        dual = np.zeros((self.members, n, targets))
        # Targets with one kernel, observed on the same evaluations, share a factorisation.
        groups: dict[tuple, list[int]] = {}
        for t in range(targets):
            key = (self.kernels[t], self.scales[t], observed[:, t].tobytes())
            groups.setdefault(key, []).append(t)
        for k in range(self.members):
            for (kernel, scale, _), cols in groups.items():
                root = np.sqrt(weights[k] * observed[:, cols[0]])
                system = root[:, None] * (scale * grams[kernel]) * root[None, :] + np.eye(n)
                solved = cho_solve(cho_factor(system), root[:, None] * z[:, cols])
                dual[k][:, cols] = root[:, None] * solved
        return dual

    def _train_deep(
        self,
        idx: np.ndarray,
        residual: np.ndarray,
        observed: np.ndarray,
        weights: np.ndarray,
        steps: int,
        lr: float,
        batch: int,
        generator: torch.Generator,
    ) -> None:
        tokens, cheap = self._inputs(idx)
        target = torch.from_numpy(residual.astype(np.float32))
        mask = torch.from_numpy(weights[:, :, None] * observed[None]).float()
        optimiser = torch.optim.Adam(self.deep.parameters(), lr=lr, weight_decay=1e-4)
        n = len(idx)
        for _ in range(steps):
            # Fixed-size minibatches keep a round's cost flat as the run grows.
            rows = torch.randperm(n, generator=generator)[:batch] if n > batch else slice(None)
            m = mask[:, rows]
            optimiser.zero_grad()
            error = (self.deep(tokens[rows], cheap[:, rows]) - target[:, rows]) ** 2
            loss = (m * error).sum() / m.sum().clamp_min(1e-9)
            loss.backward()
            optimiser.step()

    # -- prediction ------------------------------------------------------------------------
    def predict(
        self, idx: np.ndarray, noise: np.ndarray | None = None, scale: float = 1.0
    ) -> np.ndarray:
        """(members, N, metrics) predicted raw values.

        With ``noise`` (members, N, metrics) of standard normals, each member's prediction is
        shifted by ``scale`` posterior standard deviations of the ridge part (a Gaussian
        process with the same kernel): an ensemble trained on the same evaluations agrees
        with itself far from them, the posterior does not.
        """
        if len(idx) == 0:
            return np.zeros((self.members, 0, len(self.metrics)))
        grams = self.kernels_between(idx, self.train_idx)
        z = self._linear(grams)
        with torch.inference_mode():
            z = z + self.deep(*self._inputs(idx)).double().numpy()
        if noise is not None and len(self.train_idx):
            z = z + scale * noise * self._posterior_std(idx, grams)[None]
        return np.stack([tr.inverse(z[:, :, t]) for t, tr in enumerate(self.transforms)], axis=-1)

    def _posterior_std(self, idx: np.ndarray, grams: dict[tuple, np.ndarray]) -> np.ndarray:
        """(N, metrics) posterior standard deviation of the ridge part (unit noise)."""
        diagonal = self.kernels_between(idx[:1], idx[:1])  # k(x, x) without the cheap term
        cheap = self.codec.cheap_batch(idx).astype(np.float64)
        c0 = (cheap[:1] ** 2).sum()
        out = np.zeros((len(idx), len(self.metrics)))
        for t, weights in enumerate(self.kernels):
            scale, key = self.scales[t], (weights, self.scales[t])
            if key not in self._factors:
                train = scale * self.kernels_between(self.train_idx, self.train_idx)[weights]
                self._factors[key] = cho_factor(train + np.eye(len(train)))
            cross = scale * grams[weights]  # (N, train)
            prior = scale * (diagonal[weights][0, 0] + weights[2] * ((cheap**2).sum(axis=1) - c0))
            explained = (cross * cho_solve(self._factors[key], cross.T).T).sum(axis=1)
            out[:, t] = np.sqrt(np.maximum(prior - explained, 0.0))
        return out

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self._text is None:
            tensors = dict(self.deep.state_dict())
            tensors["ridge_dual"] = torch.from_numpy(self.dual)
            tensors["ridge_rows"] = torch.from_numpy(self.train_idx)
            self._text = tensors_to_text(tensors)
        return {
            "weights": self._text,
            "scales": list(self.scales),
            "fitted": self.fitted,
            "transforms": [tr.state() for tr in self.transforms],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        tensors = tensors_from_text(state["weights"])
        self.dual = tensors.pop("ridge_dual").numpy().astype(np.float64)
        self.train_idx = tensors.pop("ridge_rows").numpy().astype(np.int64)
        self.deep.load_state_dict(tensors)
        self.fitted = int(state["fitted"])
        self.scales = [float(x) for x in state["scales"]]
        self._factors = {}
        for tr, s in zip(self.transforms, state["transforms"]):
            tr.load(s)
        self._text = state["weights"]
