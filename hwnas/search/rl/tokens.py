"""Index view of a categorical space for the RL strategy: layer tokens, one-hot, cheap costs.

Every genotype is a row of option indices (one per position). The layer sequence the
embedding reads comes from :meth:`SearchSpace.layers`; a layer's description depends only on
its own position and choice in nb201, macro and mobilenet, so the token of every
(position, option) is computed once and a batch of genotypes is one array gather.

Cheap costs (parameters and multiply-accumulates of the built network) are training-free
inputs for the predictors. They are additive over positions in these spaces (each position
owns its modules; NB201 repeats one cell), so the exact additive cost model of
:mod:`hwnas.profilers.additive` gives them for every genotype in microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hwnas.spaces.base import CategoricalSpace, LayerInfo
from hwnas.types import Genotype


class SpaceCodec:
    """Genotypes as index rows, layer tokens (N, positions, features) and cheap features."""

    def __init__(self, space: CategoricalSpace, *, cheap_features: bool = True) -> None:
        self.space = space
        self.cards = np.array(space.cardinalities(), dtype=np.int64)
        self.positions = len(self.cards)
        self.max_card = int(self.cards.max())
        self.option_mask = np.arange(self.max_card)[None, :] < self.cards[:, None]
        self.offsets = np.concatenate([[0], np.cumsum(self.cards)[:-1]])
        self.tokens = _token_table(space, self.cards, self.max_card)
        self.token_size = int(self.tokens.shape[-1])
        self.cheap = _cost_table(space) if cheap_features else None
        self.cheap_size = 0 if self.cheap is None else 2

    # -- conversions -----------------------------------------------------------------------
    def indices(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        if not genotypes:
            return np.zeros((0, self.positions), dtype=np.int64)
        return np.stack([self.space.to_indices(g) for g in genotypes]).astype(np.int64)

    def genotype(self, row: np.ndarray) -> Genotype:
        return self.space.from_indices([int(i) for i in row])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform random index rows."""
        return (rng.random((n, self.positions)) * self.cards[None, :]).astype(np.int64)

    # -- features --------------------------------------------------------------------------
    def token_batch(self, idx: np.ndarray) -> np.ndarray:
        """(N, positions, token_size) float32 layer tokens."""
        return self.tokens[np.arange(self.positions)[None, :], idx]

    def one_hot(self, idx: np.ndarray) -> np.ndarray:
        out = np.zeros((len(idx), int(self.cards.sum())), dtype=np.float64)
        out[np.arange(len(idx))[:, None], self.offsets[None, :] + idx] = 1.0
        return out

    def cheap_batch(self, idx: np.ndarray) -> np.ndarray:
        """(N, 2): log10 of parameters and of MACs, scaled to about [0, 1] over the space."""
        if self.cheap is None:
            return np.zeros((len(idx), 0), dtype=np.float32)
        base, delta, low, high = self.cheap
        total = base + delta[np.arange(self.positions)[None, :], idx].sum(axis=1)
        logs = np.log10(np.maximum(total, 1.0))
        return ((logs - low) / np.maximum(high - low, 1e-9)).astype(np.float32)

    def raw_costs(self, idx: np.ndarray) -> np.ndarray | None:
        """(N, 2) parameters and MACs (for tests and docs), None without cheap features."""
        if self.cheap is None:
            return None
        base, delta, _, _ = self.cheap
        return base + delta[np.arange(self.positions)[None, :], idx].sum(axis=1)


def _token_table(space: CategoricalSpace, cards: np.ndarray, max_card: int) -> np.ndarray:
    """(positions, max_card, features): op one-hot, kernel, expansion, width, stride, groups,
    and the position one-hot (NB201's edges differ by where they sit in the cell)."""
    positions = len(cards)
    infos: list[list[LayerInfo | None]] = [[None] * max_card for _ in range(positions)]
    base = np.zeros(positions, dtype=np.int64)
    try:
        for p in range(positions):
            for o in range(int(cards[p])):
                row = base.copy()
                row[p] = o
                layers = space.layers(space.from_indices(row))
                if len(layers) != positions:
                    raise NotImplementedError
                infos[p][o] = layers[p]
    except NotImplementedError:
        # No layer description: a token is then the option's identity at its position.
        infos = [
            [LayerInfo(op=f"option{o}") if o < cards[p] else None for o in range(max_card)]
            for p in range(positions)
        ]
    present = [i for row in infos for i in row if i is not None]
    vocab = sorted({i.op for i in present})
    scale = {
        "kernel": max(max(i.kernel for i in present), 1),
        "expansion": max(max(i.expansion for i in present), 1.0),
        "channels": max(math.log2(max(max(i.channels for i in present), 1)), 1.0),
        "groups": max(math.log2(max(max(i.groups for i in present), 1)), 1.0),
    }
    size = len(vocab) + 5 + positions
    table = np.zeros((positions, max_card, size), dtype=np.float32)
    for p in range(positions):
        for o in range(max_card):
            info = infos[p][o]
            if info is None:
                continue
            vec = table[p, o]
            vec[vocab.index(info.op)] = 1.0
            k = len(vocab)
            vec[k] = info.kernel / scale["kernel"]
            vec[k + 1] = info.expansion / scale["expansion"]
            vec[k + 2] = math.log2(max(info.channels, 1)) / scale["channels"]
            vec[k + 3] = float(info.stride > 1)
            vec[k + 4] = math.log2(max(info.groups, 1)) / scale["groups"]
            vec[k + 5 + p] = 1.0
    return table


def _cost_table(space: CategoricalSpace) -> tuple[float, np.ndarray, np.ndarray, np.ndarray] | None:
    """(base costs, per-(position, option) deltas, log10 low, log10 high) of parameters and
    MACs, from the exact additive cost model the cheap profiler also uses (built once per
    process and space); None when the space's costs are not additive."""
    from hwnas.profilers.additive import additive_model

    model = additive_model(space, 10, space.input_shape)
    if model is None:
        return None
    cards = np.array(space.cardinalities(), dtype=np.int64)
    base = model.base[:2]  # params, macs (the model's METRICS order)
    delta = np.zeros((len(cards), int(cards.max()), 2))
    for p, rows in enumerate(model.deltas):
        delta[p, : len(rows)] = rows[:, :2]
    valid = (np.arange(delta.shape[1])[None, :] < cards[:, None])[:, :, None]
    low = np.log10(np.maximum(base + np.where(valid, delta, np.inf).min(axis=1).sum(axis=0), 1.0))
    high = np.log10(np.maximum(base + np.where(valid, delta, -np.inf).max(axis=1).sum(axis=0), 1.0))
    return base, delta, low, high
