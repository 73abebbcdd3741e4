"""The ``supernet`` weight transfer: a candidate starts from the weights cut out of the supernet.

The strategy writes each candidate's path of the supernet to a weights file in the run
directory and gives the candidate ``{"kind": "supernet", "weights": "strategy/weights/....
safetensors"}`` without a parent; the training provider loads that file and calls
:func:`supernet_transfer` (registered in :data:`hwnas.training.inherit.TRANSFERS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hwnas.training.inherit import InheritReport, load_whole_state
from hwnas.types import Genotype

if TYPE_CHECKING:
    from hwnas.spaces.base import SearchSpace

__all__ = ["supernet_transfer"]


def supernet_transfer(
    child: nn.Module,
    parent_state: Mapping[str, torch.Tensor],
    *,
    parent_genotype: Genotype | None = None,
    child_genotype: Genotype | None = None,
    space: SearchSpace | None = None,
    transfer: Mapping[str, Any] | None = None,
) -> InheritReport:
    """Load every tensor of the extracted path (the file was cut for this very genotype)."""
    return load_whole_state(
        child,
        parent_state,
        kind="supernet",
        source="the weights",
        notes={"weights": str((transfer or {}).get("weights", ""))},
        genotypes=(parent_genotype, child_genotype),
    )
