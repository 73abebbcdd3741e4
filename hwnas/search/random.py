"""Random search: uniform samples from the space, never repeating a genotype."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hwnas.search.base import Strategy
from hwnas.spaces.base import CategoricalSpace
from hwnas.types import Candidate, Genotype, Trial

# Spaces up to this size are enumerated once rejection sampling stops finding new genotypes,
# so random search can exhaust a tabular space exactly.
_ENUMERABLE = 2_000_000


class RandomSearch(Strategy):
    """The baseline every NAS method must beat (Li and Talwalkar, 2019)."""

    name = "random"
    batch_size = 64

    def ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        seen = set(self.known)
        for _ in range(n):
            genotype = self.draw_new(lambda: self.space.sample(self.rng), avoid=seen)
            if genotype is None:
                genotype = self._draw_unseen(seen)
            if genotype is None:  # the space is exhausted
                break
            seen.add(genotype.key())
            out.append(Candidate(genotype))
        return out

    def _draw_unseen(self, seen: set[str]) -> Genotype | None:
        space = self.space
        if not isinstance(space, CategoricalSpace) or space.size() > _ENUMERABLE:
            return None
        ranges = [range(c) for c in space.cardinalities()]
        unseen = [
            g
            for g in (space.from_indices(idx) for idx in itertools.product(*ranges))
            if g.key() not in seen
        ]
        return unseen[int(self.rng.integers(len(unseen)))] if unseen else None

    def tell(self, trials: Sequence[Trial]) -> None:
        """Random search learns nothing."""
