"""Random search: uniform samples from the space, never repeating a genotype."""

from __future__ import annotations

from collections.abc import Sequence

from hwnas.search.base import Strategy
from hwnas.types import Candidate, Trial


class RandomSearch(Strategy):
    """The baseline every NAS method must beat (Li and Talwalkar, 2019)."""

    name = "random"
    batch_size = 64

    def ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        seen = set(self.known)
        for _ in range(n):
            genotype = self.draw_new(lambda: self.space.sample(self.rng), avoid=seen)
            if genotype is None:  # the space is (nearly) exhausted
                break
            seen.add(genotype.key())
            out.append(Candidate(genotype))
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        """Random search learns nothing."""
