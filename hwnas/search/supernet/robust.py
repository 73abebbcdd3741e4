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
``es_window`` epochs earlier (:mod:`hwnas.search.supernet.hessian`). ``darts-minus`` (Chu et
al. 2021, "DARTS-: Robustly Stepping out of Performance Collapse Without Indicators") adds an
auxiliary skip connection ``beta * x`` to the output of every mixed edge while the supernet
trains (weight and theta steps alike), so the skip candidate no longer has to win theta to give
the gradients a residual path (the "unfair advantage" DARTS- blames for the collapse); ``beta``
decays linearly to 0, so the search ends on the plain supernet. Schedule
(:func:`darts_minus_beta`): ``robust_beta`` (the paper: 1) through the warm-up epochs (weights
only, theta fixed: the weights learn with the skip the search starts from), then linearly, per
weight step, from ``robust_beta`` at the first search step towards 0 at the end of the last
epoch; 0 at every other time (one-shot scoring, Hessian measurement, the hand-off, after
training), so a one-hot path still computes the stand-alone network bit for bit. It needs edges
whose input and output shapes match: only the ``nb201`` cell space has them everywhere, so
``mobilenet`` supernets refuse it. ``none`` keeps plain training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["ROBUST", "auxiliary_skip", "darts_minus_beta", "perturb", "robust_epsilon"]

ROBUST = ("none", "sdarts-rs", "hessian-es", "darts-minus")
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


def darts_minus_beta(
    kind: str, beta: float, epoch: int, fraction: float, *, warmup: int, epochs: int
) -> float:
    """DARTS-'s auxiliary skip weight at ``fraction`` (in [0, 1)) of epoch ``epoch`` (0-based):
    ``beta`` through the warm-up, then ``beta * (1 - progress)`` with ``progress`` the share of
    the search epochs done; 0 without ``darts-minus``."""
    if kind != "darts-minus":
        return 0.0
    if epoch < warmup:
        return float(beta)
    progress = (epoch - warmup + fraction) / max(1, epochs - warmup)
    return float(beta) * max(0.0, 1.0 - progress)


@contextlib.contextmanager
def auxiliary_skip(model: nn.Module, beta: float) -> Iterator[None]:
    """Run ``model`` (a supernet with an ``aux_skip`` attribute) with DARTS-'s auxiliary skip
    ``beta``, and set it back to 0 afterwards, also on an error."""
    if not beta:
        yield
        return
    model.aux_skip = beta
    try:
        yield
    finally:
        model.aux_skip = 0.0
