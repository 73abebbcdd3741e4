"""The search-space protocol, and a base for spaces of fixed-length categorical choices.

A space turns genotypes (canonical text) into torch modules and knows how to sample, mutate,
cross over and encode them. Only :meth:`SearchSpace.build` needs torch, and spaces import it
there, so that a search on a benchmark table never pays for importing torch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hwnas.errors import GenotypeError
from hwnas.types import Genotype

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a network as a sequence model sees it (RL embedding, predictors, LUTs)."""

    op: str  # e.g. "ir", "skip", "nor_conv_3x3"
    kernel: int = 0
    expansion: float = 0.0
    channels: int = 0  # output channels
    stride: int = 1
    groups: int = 1


class SearchSpace(abc.ABC):
    """A set of architectures. Subclasses take their settings as keyword-only arguments."""

    name: ClassVar[str]
    #: (channels, height, width) of the input the space is designed for.
    input_shape: tuple[int, int, int] = (3, 32, 32)

    # -- canonical form --------------------------------------------------------------------
    @abc.abstractmethod
    def parse(self, spec: str) -> Genotype:
        """Genotype from text (canonical form, or documented alternatives); validated.

        Raises :class:`GenotypeError` with a message that shows the expected form.
        """

    def validate(self, genotype: Genotype) -> None:
        """Raise :class:`GenotypeError` unless ``genotype`` belongs to this space."""
        if genotype.space != self.name:
            raise GenotypeError(
                f"genotype '{genotype.key()}' belongs to space '{genotype.space}', "
                f"not '{self.name}'"
            )
        if self.parse(genotype.spec) != genotype:
            raise GenotypeError(
                f"'{genotype.spec}' is not in canonical form for space '{self.name}'; "
                f"use '{self.parse(genotype.spec).spec}'"
            )

    def config(self) -> dict[str, Any]:
        """The keyword arguments that recreate this space (saved in a run's config)."""
        return {}

    def size(self) -> int | None:
        """The number of architectures, or None when unbounded."""
        return None

    # -- search operators ------------------------------------------------------------------
    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Genotype:
        """A uniformly random architecture (uniform over per-layer choices)."""

    @abc.abstractmethod
    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """A random neighbour that differs from ``genotype``."""

    @abc.abstractmethod
    def crossover(self, a: Genotype, b: Genotype, rng: np.random.Generator) -> Genotype:
        """A child that takes each decision from one of the parents."""

    @property
    @abc.abstractmethod
    def encoding_size(self) -> int:
        """Length of :meth:`encode`'s vectors."""

    @abc.abstractmethod
    def encode(self, genotype: Genotype) -> np.ndarray:
        """A fixed-length float vector (for predictors, density estimates, RL)."""

    def predictor_features(self, genotype: Genotype) -> np.ndarray:
        """Fixed-length features for performance predictors; :meth:`encode` unless a space
        knows a better representation (e.g. nb201's path encoding)."""
        return self.encode(genotype)

    def function_key(self, genotype: Genotype) -> str:
        """Equal for architectures that compute the same function (their outcomes differ by
        training noise alone); each architecture its own unless a space knows better (nb201
        merges cells that are the same up to dead edges and isomorphism)."""
        return genotype.key()

    def layers(self, genotype: Genotype) -> list[LayerInfo]:
        """The searchable layers of ``genotype`` in order (for sequence encoders)."""
        raise NotImplementedError(f"space '{self.name}' does not describe its layers")

    # -- networks --------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self, genotype: Genotype, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        """The torch network of ``genotype`` (freshly initialised)."""


class CategoricalSpace(SearchSpace):
    """A space where an architecture is one choice per position from a fixed list of options.

    Subclasses define :meth:`options` and the text form (:meth:`to_spec` / :meth:`from_spec`);
    sampling, mutation, crossover, the integer and one-hot encodings come from here.
    """

    @abc.abstractmethod
    def options(self) -> Sequence[Sequence[str]]:
        """For each position, the names of its allowed choices (fixed order)."""

    @abc.abstractmethod
    def to_spec(self, choices: Sequence[str]) -> str:
        """Canonical text of one choice per position (choices already valid)."""

    @abc.abstractmethod
    def from_spec(self, spec: str) -> list[str]:
        """Choices from text; raise GenotypeError when the text cannot be read."""

    # -- derived ---------------------------------------------------------------------------
    def cardinalities(self) -> list[int]:
        return [len(o) for o in self.options()]

    def size(self) -> int:
        return int(np.prod(self.cardinalities(), dtype=object))

    def parse(self, spec: str) -> Genotype:
        choices = self.from_spec(spec.strip())
        self._check_choices(choices, spec)
        return Genotype(self.name, self.to_spec(choices))

    def _check_choices(self, choices: Sequence[str], spec: str) -> None:
        options = self.options()
        if len(choices) != len(options):
            raise GenotypeError(
                f"'{spec}' has {len(choices)} choices but space '{self.name}' needs {len(options)}"
            )
        for position, (choice, allowed) in enumerate(zip(choices, options)):
            if choice not in allowed:
                raise GenotypeError(
                    f"'{spec}': choice '{choice}' at position {position} is not allowed in "
                    f"space '{self.name}'; allowed there: {', '.join(allowed)}"
                )

    def choices(self, genotype: Genotype) -> list[str]:
        return self.from_spec(genotype.spec)

    def to_indices(self, genotype: Genotype) -> np.ndarray:
        options = self.options()
        return np.array([list(o).index(c) for o, c in zip(options, self.choices(genotype))])

    def from_indices(self, indices: Sequence[int]) -> Genotype:
        options = self.options()
        if len(indices) != len(options):
            raise GenotypeError(f"expected {len(options)} indices, got {len(indices)}")
        return Genotype(self.name, self.to_spec([o[int(i)] for o, i in zip(options, indices)]))

    def sample(self, rng: np.random.Generator) -> Genotype:
        return self.from_indices([rng.integers(n) for n in self.cardinalities()])

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """Change one random position (with more than one option) to a different choice."""
        indices = self.to_indices(genotype)
        cards = self.cardinalities()
        mutable = [i for i, n in enumerate(cards) if n > 1]
        position = int(rng.choice(mutable))
        shift = int(rng.integers(1, cards[position]))
        indices[position] = (indices[position] + shift) % cards[position]
        return self.from_indices(indices)

    def crossover(self, a: Genotype, b: Genotype, rng: np.random.Generator) -> Genotype:
        """Uniform crossover: each position from either parent with probability 1/2."""
        ia, ib = self.to_indices(a), self.to_indices(b)
        take_b = rng.random(len(ia)) < 0.5
        return self.from_indices(np.where(take_b, ib, ia))

    @property
    def encoding_size(self) -> int:
        return int(sum(self.cardinalities()))

    def encode(self, genotype: Genotype) -> np.ndarray:
        """Concatenated one-hot vectors, one per position."""
        out = np.zeros(self.encoding_size, dtype=np.float32)
        offset = 0
        for index, n in zip(self.to_indices(genotype), self.cardinalities()):
            out[offset + index] = 1.0
            offset += n
        return out
