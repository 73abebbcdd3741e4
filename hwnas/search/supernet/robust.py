"""Remedies for DARTS's collapse (see :mod:`hwnas.search.supernet.collapse`).

``sdarts-rs`` (Chen & Hsieh 2020, "Stabilizing Differentiable Architecture Search via
Perturbation-based Regularization", random smoothing): every weight step runs the supernet with
the relaxed architecture weights perturbed by uniform noise ``U(-eps, eps)``, so the shared
weights are trained for a neighbourhood of theta rather than for theta alone. That flattens the
validation loss around theta (a smaller dominant Hessian eigenvalue, which RobustDARTS found to
go with collapse), and the derived architecture keeps its parametric operations. ``eps`` grows
linearly from 0.03 to ``robust_epsilon`` (SDARTS: 0.3) over the epochs, as in the authors' code.
``hessian-es`` (Zela et al. 2020, RobustDARTS's DARTS-ES) trains plainly but stops a head's
search when the dominant Hessian eigenvalue of its validation loss grows, keeping the logits of
``es_window`` epochs earlier (:mod:`hwnas.search.supernet.hessian`). ``none`` keeps plain
training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["ROBUST", "perturb", "robust_epsilon"]

ROBUST = ("none", "sdarts-rs", "hessian-es")
_EPS_START = 0.03


def robust_epsilon(kind: str, maximum: float, epoch: int, epochs: int) -> float:
    """The perturbation bound of ``epoch`` (0-based); 0 without random smoothing."""
    if kind != "sdarts-rs":
        return 0.0
    start = min(_EPS_START, maximum)
    return start + (maximum - start) * epoch / max(1, epochs - 1)


def perturb(
    mix: Sequence[torch.Tensor],
    active: Sequence[Sequence[int]],
    epsilon: float,
    generator: torch.Generator,
) -> list[torch.Tensor]:
    """``mix`` plus ``U(-epsilon, epsilon)`` on the active candidates of every layer (the
    inactive ones stay zero, so path sampling still runs only its paths)."""
    out = []
    for weights, chosen in zip(mix, active):
        noise = (torch.rand(weights.shape, generator=generator) * 2 - 1) * epsilon
        mask = torch.zeros(weights.shape, dtype=torch.bool)
        mask[list(chosen)] = True
        noise = torch.where(mask, noise, torch.zeros_like(noise)).to(weights)
        out.append(weights + noise)
    return out
