"""Network morphisms: edits of a trained network that keep (or nearly keep) its function.

A :class:`Morphism` is three pure functions. ``propose`` draws the parameters of one random
application to a genotype (or says it does not apply), ``child`` gives the child genotype for
those parameters, and ``transform`` carries the parent's ``state_dict`` through the edit. The
genotype part needs no torch, so a strategy can propose children and compute their cheap
objectives without weights; the training provider applies the same parameters to the parent's
trained weights later (transfer kind ``morphism``, see :func:`apply_transfer`).

Exact morphisms keep the network's function (eval mode, so BatchNorm uses its running
statistics, which the morphisms set accordingly); approximate ones (removing or pruning) do
not, and LEMONADE follows them with knowledge distillation from the parent.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.spaces.base import SearchSpace
from hwnas.types import Genotype

if TYPE_CHECKING:
    import torch
    from torch import nn

    from hwnas.training.inherit import InheritReport

StateDict = Mapping[str, "torch.Tensor"]
Params = dict[str, Any]

#: Spaces with morphisms: space name -> module defining ``MORPHISMS`` and ``io_shape``.
_MODULES = {"chain": "hwnas.morphisms.chain", "mobilenet": "hwnas.morphisms.mobilenet"}


@dataclass(frozen=True)
class Morphism:
    """One kind of network morphism of one space (see the module docstring)."""

    name: str
    exact: bool
    summary: str
    propose: Callable[[SearchSpace, Genotype, np.random.Generator], Params | None]
    child: Callable[[SearchSpace, Genotype, Params], Genotype]
    transform: Callable[[SearchSpace, Genotype, Genotype, StateDict, StateDict, Params], dict]

    def apply(
        self,
        space: SearchSpace,
        parent: Genotype,
        parent_state: StateDict,
        rng: np.random.Generator,
        params: Params | None = None,
        *,
        fresh: StateDict | None = None,
    ) -> tuple[Genotype, dict[str, torch.Tensor]]:
        """``(child genotype, child state_dict)``; new tensors come from ``fresh`` (a freshly
        initialised child's state) or, without it, from a child built with a seed from ``rng``.

        ``params`` None draws them with ``rng``; ValueError when the morphism does not apply.
        """
        if params is None:
            params = self.propose(space, parent, rng)
            if params is None:
                raise ValueError(f"morphism '{self.name}' does not apply to '{parent.spec}'")
        child = self.child(space, parent, params)
        if fresh is None:
            fresh = fresh_state(space, child, parent_state, seed=int(rng.integers(2**31)))
        return child, self.transform(space, parent, child, parent_state, fresh, params)

    def describe(self, params: Params) -> dict[str, Any]:
        """The JSON description of one application, as stored in a candidate's transfer."""
        return {"name": self.name, "exact": self.exact, "params": dict(params)}


def _module(space: SearchSpace | str) -> Any:
    name = space if isinstance(space, str) else space.name
    target = _MODULES.get(name)
    return importlib.import_module(target) if target else None


def has_morphisms(space: SearchSpace | str) -> bool:
    return _module(space) is not None


def morphisms_for(space: SearchSpace | str) -> dict[str, Morphism]:
    """The morphisms of a space by name (empty when the space has none)."""
    module = _module(space)
    return dict(module.MORPHISMS) if module is not None else {}


def get_morphism(space: SearchSpace | str, name: str) -> Morphism:
    known = morphisms_for(space)
    if name not in known:
        space_name = space if isinstance(space, str) else space.name
        raise ConfigError(
            f"space '{space_name}' has no morphism '{name}'; choose one of: "
            f"{', '.join(known) or 'none'}"
        )
    return known[name]


def propose(
    space: SearchSpace,
    parent: Genotype,
    rng: np.random.Generator,
    *,
    names: Sequence[str] | None = None,
    steps: int = 1,
) -> tuple[Genotype, list[dict[str, Any]]] | None:
    """A random child by ``steps`` morphisms, each drawn uniformly among the kinds in
    ``names`` (all by default) that apply; ``(child, step descriptions)`` or None."""
    chosen = (
        [get_morphism(space, n) for n in names] if names else list(morphisms_for(space).values())
    )
    genotype, described = parent, []
    for _ in range(steps):
        for index in rng.permutation(len(chosen)):
            morphism = chosen[int(index)]
            params = morphism.propose(space, genotype, rng)
            if params is not None:
                genotype = morphism.child(space, genotype, params)
                described.append(morphism.describe(params))
                break
        else:
            break
    return (genotype, described) if described else None


def propose_transfer(
    space: SearchSpace,
    parent: Genotype,
    rng: np.random.Generator,
    *,
    names: Sequence[str] | None = None,
    steps: int = 1,
    distill: float = 0.0,
) -> tuple[Genotype, dict[str, Any]] | None:
    """:func:`propose`, with the candidate's ``morphism`` transfer: the steps, a seed for the
    fresh tensors, and ``distill`` (knowledge distillation from the parent, when > 0) if any
    step is approximate. None when no morphism applies."""
    proposal = propose(space, parent, rng, names=names, steps=steps)
    if proposal is None:
        return None
    child, described = proposal
    transfer: dict[str, Any] = {
        "kind": "morphism",
        "steps": described,
        "seed": int(rng.integers(2**31)),
    }
    if distill > 0 and not all(s["exact"] for s in described):
        transfer["distill"] = distill
    return child, transfer


def apply_steps(
    space: SearchSpace,
    parent: Genotype,
    parent_state: StateDict,
    steps: Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
    fresh: StateDict | None = None,
) -> tuple[Genotype, dict[str, torch.Tensor]]:
    """Apply described steps in order; ``fresh`` (the final child's initial state) provides
    the last step's new tensors, a network built from ``seed`` those of earlier steps."""
    rng = np.random.default_rng(seed)
    genotype, state = parent, dict(parent_state)
    for i, step in enumerate(steps):
        morphism = get_morphism(space, str(step["name"]))
        last = i == len(steps) - 1
        genotype, state = morphism.apply(
            space, genotype, state, rng, dict(step["params"]), fresh=fresh if last else None
        )
    return genotype, state


def io_shape(space: SearchSpace, state: StateDict) -> tuple[int, int]:
    """``(num_classes, in_channels)`` of a network of ``space`` from its state_dict."""
    return _module(space).io_shape(state)


def fresh_state(
    space: SearchSpace, genotype: Genotype, like: StateDict, *, seed: int
) -> dict[str, torch.Tensor]:
    """The state of a freshly initialised network of ``genotype`` (same classes and input
    channels as the network whose state is ``like``), built with torch seed ``seed``."""
    import torch

    num_classes, in_channels = io_shape(space, like)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = space.build(genotype, num_classes=num_classes, in_channels=in_channels)
    return model.state_dict()


def apply_transfer(
    child: nn.Module,
    parent_state: StateDict,
    *,
    parent_genotype: Genotype | None,
    child_genotype: Genotype | None,
    space: SearchSpace | None,
    transfer: Mapping[str, Any],
) -> InheritReport:
    """Transfer kind ``morphism``: ``{"kind": "morphism", "steps": [{"name", "params"}, ...],
    "seed": int, "distill": weight}``; loads the morphed parent weights into ``child``."""
    from hwnas.training.inherit import InheritReport

    if space is None or parent_genotype is None:
        raise ValueError("transfer 'morphism' needs the space and the parent's genotype")
    steps = transfer.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValueError("transfer 'morphism' needs a non-empty list of steps")
    genotype, state = apply_steps(
        space,
        parent_genotype,
        parent_state,
        steps,
        seed=int(transfer.get("seed", 0)),
        fresh=child.state_dict(),
    )
    if child_genotype is not None and genotype != child_genotype:
        raise ValueError(
            f"the morphisms turn '{parent_genotype.spec}' into '{genotype.spec}', not into the "
            f"candidate '{child_genotype.spec}'"
        )
    child.load_state_dict(state, strict=True)
    elements = sum(t.numel() for t in state.values())
    return InheritReport(
        "morphism",
        len(state),
        elements,
        notes={
            "morphisms": [str(s["name"]) for s in steps],
            "exact": all(bool(s.get("exact", False)) for s in steps),
        },
    )
