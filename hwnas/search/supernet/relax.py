"""How architecture logits theta weight a layer's candidates (the only place the methods differ
in the forward pass).

``gumbel`` (FBNet, SqueezeNAS, SNAS): ``softmax((theta + g) / tau)`` with Gumbel noise ``g``, a
sample from a relaxed categorical that becomes one-hot as ``tau -> 0``. ``softmax`` (DARTS):
``softmax(theta)``, deterministic, no temperature.

``paths`` chooses how many candidates run per layer and step:

- ``full``: all of them, weighted (FBNet, DARTS, SNAS as published);
- ``two``: two candidates drawn without replacement by the perturbed logits, weighted by the
  relaxation renormalised over the two (ProxylessNAS's binary gates);
- ``one``: the arg-max candidate only, with the straight-through estimator (GDAS): its weight
  is 1 in the forward pass and carries the relaxed weight's gradient to every logit.

The expected cost always uses the full relaxed weights of the same draw: it needs no forward
pass, so path sampling saves memory without changing the hardware loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["PATHS", "RELAXATIONS", "Relaxed", "relax"]

RELAXATIONS = ("gumbel", "softmax")
PATHS = ("full", "two", "one")
_EPS = 1e-10


@dataclass
class Relaxed:
    """One draw for every layer.

    ``mix``: the weights the forward pass multiplies each active candidate with (zeros
    elsewhere); ``active``: the candidate indices that run; ``cost``: the relaxed weights for
    the expected cost; ``hard``: the arg-max candidate of each layer (a discrete sample).
    """

    mix: list[torch.Tensor]
    active: list[list[int]]
    cost: list[torch.Tensor]
    hard: list[int]


def gumbel_noise(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=generator)
    return -torch.log(-torch.log(u.clamp(_EPS, 1.0 - _EPS)))


def relax(
    theta: Sequence[torch.Tensor],
    *,
    kind: str,
    paths: str,
    temperature: float,
    generator: torch.Generator,
) -> Relaxed:
    """Weights of every layer's candidates for one step (see the module docstring)."""
    if kind not in RELAXATIONS:
        raise ValueError(f"unknown relaxation {kind!r}; choose one of {RELAXATIONS}")
    if paths not in PATHS:
        raise ValueError(f"unknown path mode {paths!r}; choose one of {PATHS}")
    out = Relaxed([], [], [], [])
    for logits in theta:
        # The noise is drawn on the CPU generator for every kind and mode, so a run's random
        # stream does not depend on the device or on the path mode.
        noise = gumbel_noise(logits.shape, generator).to(logits.device)
        if kind == "gumbel":
            perturbed = logits + noise
            soft = torch.softmax(perturbed / temperature, dim=0)
        else:
            perturbed = logits.detach() + noise  # DARTS is deterministic; noise only picks paths
            soft = torch.softmax(logits, dim=0)
        hard = int(torch.argmax(perturbed.detach()))
        n = logits.numel()
        if paths == "full" or n == 1:
            mix, active = soft, list(range(n))
        elif paths == "two":
            pair = torch.topk(perturbed.detach(), 2).indices
            scores = perturbed[pair] / temperature if kind == "gumbel" else logits[pair]
            mix = torch.zeros_like(soft).index_put((pair,), torch.softmax(scores, dim=0))
            active = [int(i) for i in pair]
        else:
            one_hot = torch.zeros_like(soft)
            one_hot[hard] = 1.0
            mix = one_hot - soft.detach() + soft
            active = [hard]
        out.mix.append(mix)
        out.active.append(active)
        out.cost.append(soft)
        out.hard.append(hard)
    return out
