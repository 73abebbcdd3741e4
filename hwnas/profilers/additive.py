"""Exact per-position cost models for categorical spaces, so cheap costs take microseconds.

In nb201, macro and mobilenet every position has fixed input and output shapes, so a network's
parameters, MACs and fp32 size are a constant plus one term per (position, choice). The model
learns those terms from ``1 + sum(cardinalities)`` real builds and is used only after it has
reproduced the exact counts of random architectures; otherwise callers keep counting exactly.
Strategies that screen thousands of candidates on cheap objectives (LEMONADE, RL) rely on it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.spaces.base import CategoricalSpace, SearchSpace
from hwnas.types import Genotype

METRICS = ("params", "macs", "size")


@dataclass(frozen=True)
class AdditiveCostModel:
    base: np.ndarray  # (n_metrics,) cost of the reference architecture
    deltas: list[np.ndarray]  # per position: (n_choices, n_metrics) change against the reference

    def predict(self, indices: Sequence[int]) -> dict[str, float]:
        total = self.base.copy()
        for position, choice in enumerate(indices):
            total += self.deltas[position][int(choice)]
        return {m: float(v) for m, v in zip(METRICS, total)}


def exact_costs(
    space: SearchSpace, genotype: Genotype, num_classes: int, input_shape: Sequence[int]
) -> np.ndarray:
    import torch

    from hwnas.profilers.cheap import count_macs, count_params, fp32_size_bytes

    with torch.device("meta"):
        model = space.build(genotype, num_classes=num_classes, in_channels=input_shape[0])
    return np.array(
        [count_params(model), count_macs(model, input_shape), fp32_size_bytes(model)], dtype=float
    )


def additive_model(
    space: SearchSpace, num_classes: int, input_shape: Sequence[int]
) -> AdditiveCostModel | None:
    """The space's exact additive cost model, or None when its costs are not additive."""
    if not isinstance(space, CategoricalSpace):
        return None
    return _cached_model(
        space.name, json.dumps(space.config(), sort_keys=True), num_classes, tuple(input_shape)
    )


@functools.lru_cache(maxsize=16)
def _cached_model(
    space_name: str, config_json: str, num_classes: int, input_shape: tuple[int, ...]
) -> AdditiveCostModel | None:
    from hwnas.spaces import make_space

    space = make_space(space_name, json.loads(config_json))
    assert isinstance(space, CategoricalSpace)
    cards = space.cardinalities()
    reference = [0] * len(cards)

    def cost(indices: Sequence[int]) -> np.ndarray:
        return exact_costs(space, space.from_indices(indices), num_classes, input_shape)

    base = cost(reference)
    deltas = []
    for position, n in enumerate(cards):
        rows = np.zeros((n, len(METRICS)))
        for choice in range(1, n):
            changed = list(reference)
            changed[position] = choice
            rows[choice] = cost(changed) - base
        deltas.append(rows)
    model = AdditiveCostModel(base, deltas)
    # Trust it only if it is exact on random architectures (interactions would show here).
    rng = np.random.default_rng(0)
    for _ in range(4):
        indices = [int(rng.integers(n)) for n in cards]
        predicted = np.array(list(model.predict(indices).values()))
        if not np.array_equal(predicted, cost(indices)):
            return None
    return model
