"""Which of a supernet's proposals are handed to the runner.

Two hand-offs (option ``handoff``):

``bands`` (the default): the range of the combined cost, from the cheapest to the dearest
architecture, is cut into one band per candidate. For each band, the head whose learned
distribution expects the nearest cost is *tilted* towards the band's centre,
``q_l(j) ~ p_l(j) exp(-lambda c_l(j))`` with ``lambda`` found by bisection so that the expected
cost is the centre (a hardware-penalty weight per band, applied after training: the head's
preferences among operations of similar cost are kept, only the cost level moves). Samples of
the tilted distribution and every head's arg-max form the pool; each lands in the band of its
exact cost, and the band's candidate is its member with the best one-shot accuracy. So the
candidates span the cost axis even when every head collapsed to cheap operations, and the
one-shot ranking only has to compare architectures of similar cost. Bands that no draw
reached are filled where the candidates are sparsest in cost (:func:`farthest_fill`).

``pareto``: each head's arg-max, then the pool sorted by predicted Pareto rank on (one-shot
error, predicted costs) and, within a rank, by NSGA-II's crowding distance. Handing off only the
first few samples per head gave fronts of two on error x latency x params (the heads' samples
lie close together in cost, and noisy proxy errors then let one dominate the rest).

Both orders put the most spread-out candidates first, so a budget that cuts the list keeps a
spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.objectives.pareto import pareto_ranks

if TYPE_CHECKING:
    from hwnas.search.supernet.costs import CostSet
    from hwnas.types import Genotype

__all__ = [
    "HANDOFFS",
    "Pool",
    "band_of",
    "band_order",
    "band_picks",
    "crowding_distance",
    "farthest_fill",
    "handoff_order",
    "tilt",
    "tilt_to",
]

HANDOFFS = ("bands", "pareto")
_LAMBDA_MAX = 500.0  # in units of 1 / (largest per-layer cost span): far beyond any theta


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row (inf at the ends of every objective)."""
    n, m = F.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return distance


def handoff_order(F: np.ndarray) -> list[int]:
    """Row indices of ``F`` (minimised objectives) by Pareto rank, then by crowding distance
    (largest first) within a rank; ties keep the pool's order."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return []
    ranks = pareto_ranks(F)
    ranks = np.where(ranks < 0, ranks.max() + 1, ranks)
    crowd = np.zeros(len(F))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = crowding_distance(F[members])
    return sorted(range(len(F)), key=lambda i: (int(ranks[i]), -crowd[i], i))


# -- cost bands ------------------------------------------------------------------------------
def tilt(
    probs: Sequence[np.ndarray], layer_costs: Sequence[np.ndarray], lam: float
) -> list[np.ndarray]:
    """``q_l(j) ~ p_l(j) exp(-lam c_l(j))`` per layer (lam > 0: cheaper, < 0: dearer)."""
    out = []
    for p, c in zip(probs, layer_costs):
        logits = np.log(np.clip(np.asarray(p, dtype=float), 1e-300, None)) - lam * np.asarray(c)
        q = np.exp(logits - logits.max())
        out.append(q / q.sum())
    return out


def _expected(probs: Sequence[np.ndarray], layer_costs: Sequence[np.ndarray]) -> float:
    return float(sum((p * c).sum() for p, c in zip(probs, layer_costs)))


def tilt_to(
    probs: Sequence[np.ndarray], layer_costs: Sequence[np.ndarray], target: float
) -> tuple[list[np.ndarray], float]:
    """The tilt of ``probs`` whose expected additive cost is ``target`` (clamped to what a tilt
    reaches), and its ``lambda``; found by bisection (the expectation falls with lambda)."""
    costs = [np.asarray(c, dtype=float) for c in layer_costs]
    span = max(float(c.max() - c.min()) for c in costs) or 1.0
    low, high = -_LAMBDA_MAX / span, _LAMBDA_MAX / span
    for _ in range(80):
        mid = 0.5 * (low + high)
        if _expected(tilt(probs, costs, mid), costs) > target:
            low = mid
        else:
            high = mid
    lam = 0.5 * (low + high)
    return tilt(probs, costs, lam), lam


def band_of(fraction: float, bands: int) -> int:
    """The band (0..bands-1) of a cost at ``fraction`` of the way from cheapest to dearest."""
    return min(bands - 1, max(0, int(fraction * bands)))


def band_order(bands: int) -> list[int]:
    """Bands in the order their candidates are handed off: the two ends, then always the band
    farthest from those already taken (a budget that cuts the list keeps a spread)."""
    if bands <= 0:
        return []
    order = [0] if bands == 1 else [0, bands - 1]
    while len(order) < bands:
        rest = [b for b in range(bands) if b not in order]
        order.append(max(rest, key=lambda b: (min(abs(b - t) for t in order), -b)))
    return order


def band_picks(
    bands: Sequence[int], scores: Sequence[float], n_bands: int, n: int, F: np.ndarray
) -> list[int]:
    """Up to ``n`` pool indices: the best-scored member (highest one-shot accuracy; ties keep
    the pool's order) of every band, in :func:`band_order`; when bands are empty, the rest
    of the pool fills up by :func:`farthest_fill` on the cost columns of ``F``."""
    best: dict[int, int] = {}
    for i, (b, s) in enumerate(zip(bands, scores)):
        if b not in best or s > scores[best[b]]:
            best[b] = i
    picks = [best[b] for b in band_order(n_bands) if b in best][:n]
    return farthest_fill(picks, F, n)


def farthest_fill(picks: Sequence[int], F: np.ndarray, n: int) -> list[int]:
    """``picks`` and then, up to ``n``, in turn the pool member whose costs (``F``'s columns
    after the first, the one-shot error; each scaled to [0, 1] over the pool) lie farthest
    from every member taken; ties go by :func:`handoff_order`. An empty band is filled where
    the candidates are sparsest in cost, also between costs (latency against parameters),
    not next to a band that already has one."""
    F = np.asarray(F, dtype=float)
    chosen = list(picks)
    if len(chosen) >= n or len(F) <= len(chosen):
        return chosen[:n]
    costs = F[:, 1:]
    low, span = costs.min(axis=0), np.ptp(costs, axis=0)
    scaled = (costs - low) / np.where(span > 0, span, 1.0)
    preference = {i: r for r, i in enumerate(handoff_order(F))}
    while len(chosen) < min(n, len(F)):
        rest = [i for i in range(len(F)) if i not in chosen]
        if chosen:
            taken = scaled[chosen]
            gap = {i: float(np.linalg.norm(taken - scaled[i], axis=1).min()) for i in rest}
        else:
            gap = dict.fromkeys(rest, 0.0)
        chosen.append(max(rest, key=lambda i: (gap[i], -preference[i])))
    return chosen


class Pool:
    """The proposals of a supernet's heads: distinct architectures (cells that compute the same
    function, by the space's ``function_key``, count once) with their ``info``."""

    def __init__(self, space: Any, costs: CostSet, seen: set[str]) -> None:
        self.space = space
        self.costs = costs
        self.seen = set(seen)
        self.functions: set[str] = set()
        self.members: list[tuple[Genotype, dict[str, Any]]] = []
        low, high = costs.normalised_bounds()
        self._low, self._span = low, max(high - low, 1e-12)

    def fraction(self, indices: Sequence[int]) -> float:
        """How far ``indices``'s combined cost lies from the cheapest (0) to the dearest (1)."""
        return (self.costs.normalised_exact(indices) - self._low) / self._span

    def add(
        self, indices: Sequence[int], probs: Sequence[np.ndarray], info: dict[str, Any]
    ) -> bool:
        genotype = self.space.from_indices(list(indices))
        function = getattr(self.space, "function_key", lambda g: g.key())(genotype)
        if genotype.key() in self.seen or function in self.functions:
            return False
        if getattr(self.space, "is_degenerate", lambda g: False)(genotype):
            return False  # e.g. an nb201 cell that disconnects its output: a constant network
        self.seen.add(genotype.key())
        self.functions.add(function)
        log_prob = float(sum(np.log(max(p[j], 1e-300)) for p, j in zip(probs, indices)))
        self.members.append((genotype, {
            **info,
            "log_prob": log_prob,
            "cost_fraction": round(self.fraction(indices), 4),
            "predicted": self.costs.describe(indices),
        }))  # fmt: skip
        return True

    def draw_heads(
        self,
        heads: Sequence[Sequence[np.ndarray]],
        tradeoffs: Sequence[float],
        per_head: int,
        rng: np.random.Generator,
    ) -> None:
        """``per_head`` proposals per head (``pareto``): its arg-max (added before), then
        samples, every other one from the head's distribution mixed half and half with the
        uniform one (a collapsed head's samples all cost the same; the front needs a spread)."""
        for h, probs in enumerate(heads):
            drawn = sum(1 for _, info in self.members if info["head"] == h)
            for tries in range(1, 50 * per_head):
                if drawn >= per_head:
                    break
                kind = "sample" if tries % 2 else "explore"
                mixed = probs if kind == "sample" else [0.5 * p + 0.5 / len(p) for p in probs]
                indices = [int(rng.choice(len(p), p=p / p.sum())) for p in mixed]
                info = {"head": h, "tradeoff": tradeoffs[h], "draw": kind}
                drawn += self.add(indices, probs, info)

    def draw_bands(
        self,
        heads: Sequence[Sequence[np.ndarray]],
        tradeoffs: Sequence[float],
        bands: int,
        per_band: int,
        rng: np.random.Generator,
        at_least: int = 0,
    ) -> None:
        """``per_band`` samples for each of ``bands`` cost bands (see the module docstring):
        the mode and samples of the nearest head's distribution tilted to the band's centre;
        then more samples, band after band, until the pool holds ``at_least`` members (a
        small space repeats architectures; the hand-off needs one per candidate)."""
        layer_costs = [self.costs.per_layer(i).numpy() for i in range(len(heads[0]))]
        fixed = self.costs.normalised_exact([int(np.argmin(c)) for c in layer_costs]) - sum(
            float(c.min()) for c in layer_costs
        )
        expected = [fixed + _expected(p, layer_costs) for p in heads]
        tilts = []
        for b in range(bands):
            centre = self._low + self._span * (b + 0.5) / bands
            h = int(np.argmin([abs(e - centre) for e in expected]))
            tilted, lam = tilt_to(heads[h], layer_costs, centre - fixed)
            info = {"head": h, "tradeoff": tradeoffs[h], "band": b, "tilt": round(lam, 6)}
            tilts.append((h, tilted, info))
            self.add([int(np.argmax(q)) for q in tilted], heads[h], {**info, "draw": "band-mode"})
            for _ in range(per_band - 1):
                indices = [int(rng.choice(len(q), p=q)) for q in tilted]
                self.add(indices, heads[h], {**info, "draw": "band-sample"})
        for tries in range(50 * at_least):
            if len(self.members) >= at_least or not tilts:
                break
            h, tilted, info = tilts[tries % len(tilts)]
            indices = [int(rng.choice(len(q), p=q)) for q in tilted]
            self.add(indices, heads[h], {**info, "draw": "band-sample"})
