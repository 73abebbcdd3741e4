"""Weight inheritance: start a child network from its parent's trained weights.

A candidate's ``transfer`` (JSON) says how: ``{"kind": "shape_match"}`` copies every tensor
whose name and shape are the same in parent and child and leaves the rest as initialised;
``{"kind": "continue"}`` loads all of them (same genotype, more training). Other kinds, such as
LEMONADE's exact network morphisms, register a function in :data:`TRANSFERS`:

    fn(child, parent_state, *, parent_genotype, child_genotype, space, transfer) -> InheritReport

where ``child`` is the freshly initialised child ``nn.Module``, ``parent_state`` the parent's
``state_dict`` (CPU tensors), the genotypes may be None when unknown, and ``transfer`` is the
candidate's dict. The function changes ``child`` in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.registry import Registry
from hwnas.types import Genotype

if TYPE_CHECKING:
    from hwnas.spaces.base import SearchSpace

__all__ = [
    "TRANSFERS",
    "InheritReport",
    "Transfer",
    "continue_training",
    "inherit",
    "load_whole_state",
    "shape_match",
]

#: The kind used when a candidate has a parent but no ``transfer``.
DEFAULT_KIND = "shape_match"


@dataclass(frozen=True)
class InheritReport:
    """What a transfer did: tensors (and their elements) taken from the parent or initialised.

    ``initialised`` names the child tensors that kept their fresh initialisation.
    """

    kind: str
    copied: int
    copied_elements: int
    initialised: tuple[str, ...] = ()
    notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.copied + len(self.initialised)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "copied": self.copied,
            "copied_elements": self.copied_elements,
            "initialised": len(self.initialised),
            **dict(self.notes),
        }


class Transfer(Protocol):
    def __call__(
        self,
        child: nn.Module,
        parent_state: Mapping[str, torch.Tensor],
        *,
        parent_genotype: Genotype | None,
        child_genotype: Genotype | None,
        space: SearchSpace | None,
        transfer: Mapping[str, Any],
    ) -> InheritReport: ...


#: kind -> transfer function, imported lazily ("module:function") so worker processes that
#: rebuild the evaluator from a config find every kind without importing the strategies.
TRANSFERS: Registry[Transfer] = Registry("weight transfer")
TRANSFERS.add(
    "shape_match",
    "hwnas.training.inherit:shape_match",
    "copy tensors whose name and shape match; initialise the rest",
)
TRANSFERS.add(
    "continue", "hwnas.training.inherit:continue_training", "same genotype: load every tensor"
)
TRANSFERS.add(
    "supernet",
    "hwnas.search.supernet.transfer:supernet_transfer",
    "weights cut out of a trained supernet",
)
TRANSFERS.add(
    "morphism", "hwnas.morphisms:apply_transfer", "network morphisms of the parent (LEMONADE)"
)


def inherit(
    child: nn.Module,
    parent_state: Mapping[str, torch.Tensor],
    *,
    transfer: Mapping[str, Any] | None,
    parent_genotype: Genotype | None = None,
    child_genotype: Genotype | None = None,
    space: SearchSpace | None = None,
) -> InheritReport:
    """Apply ``transfer`` (kind ``shape_match`` when None) from ``parent_state`` to ``child``."""
    transfer = dict(transfer or {"kind": DEFAULT_KIND})
    kind = transfer.get("kind", DEFAULT_KIND)
    if not isinstance(kind, str):
        raise ConfigError(f"a transfer's kind must be a name, not {kind!r}")
    fn: Callable[..., InheritReport] = TRANSFERS.get(kind)
    return fn(
        child,
        parent_state,
        parent_genotype=parent_genotype,
        child_genotype=child_genotype,
        space=space,
        transfer=transfer,
    )


def shape_match(
    child: nn.Module,
    parent_state: Mapping[str, torch.Tensor],
    *,
    parent_genotype: Genotype | None = None,
    child_genotype: Genotype | None = None,
    space: SearchSpace | None = None,
    transfer: Mapping[str, Any] | None = None,
) -> InheritReport:
    """Copy every parameter and buffer whose name and shape match; the rest stay initialised.

    In the ``mobilenet`` space a layer is ``layers.<i>``: a changed kernel size leaves the
    depthwise conv initialised while the 1x1 convs and BatchNorms of the layer are copied.
    """
    copied, elements, fresh = 0, 0, []
    with torch.no_grad():
        for name, tensor in child.state_dict().items():
            source = parent_state.get(name)
            if source is not None and source.shape == tensor.shape:
                tensor.copy_(source)
                copied += 1
                elements += tensor.numel()
            else:
                fresh.append(name)
    return InheritReport("shape_match", copied, elements, tuple(fresh))


def continue_training(
    child: nn.Module,
    parent_state: Mapping[str, torch.Tensor],
    *,
    parent_genotype: Genotype | None = None,
    child_genotype: Genotype | None = None,
    space: SearchSpace | None = None,
    transfer: Mapping[str, Any] | None = None,
) -> InheritReport:
    """Load the whole parent state: the child is the same network, trained further."""
    return load_whole_state(
        child,
        parent_state,
        kind="continue",
        source="the parent's weights",
        genotypes=(parent_genotype, child_genotype),
    )


def load_whole_state(
    child: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    kind: str,
    source: str,
    notes: Mapping[str, Any] | None = None,
    genotypes: tuple[Genotype | None, Genotype | None] = (None, None),
) -> InheritReport:
    """Load every tensor of ``state`` into ``child`` (strictly); a mismatch is one line.

    ``genotypes`` (the state's, the child's), when both are known, must be equal: a whole
    state only fits the network it came from.
    """
    parent, own = genotypes
    if parent is not None and own is not None and parent != own:
        raise ValueError(
            f"transfer '{kind}' needs the parent's genotype: {source} are for {parent.key()}, "
            f"the child is {own.key()}"
        )
    try:
        child.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"transfer '{kind}': {source} do not fit ({first})") from None
    loaded = child.state_dict()
    elements = sum(t.numel() for t in loaded.values())
    return InheritReport(kind, len(loaded), elements, notes=dict(notes or {}))
