"""Network morphisms of the ``chain`` and ``mobilenet`` spaces (see :mod:`hwnas.morphisms.base`).

Importing this package does not import torch; applying a morphism to weights does.
"""

from hwnas.morphisms.base import (
    Morphism,
    apply_steps,
    apply_transfer,
    fresh_state,
    get_morphism,
    has_morphisms,
    io_shape,
    morphisms_for,
    propose,
    propose_transfer,
)

__all__ = [
    "Morphism",
    "apply_steps",
    "apply_transfer",
    "fresh_state",
    "get_morphism",
    "has_morphisms",
    "io_shape",
    "morphisms_for",
    "propose",
    "propose_transfer",
]
