"""The architecture losses: how the task loss and the hardware cost are traded per theta head.

``cost`` is the combined, dimensionless cost of :class:`~hwnas.search.supernet.costs.CostSet` (1 for
the cheapest architecture), so every trade-off value means the same whatever the metric.

- FBNet (Wu et al. 2019): ``CE * alpha * log(LAT)^beta``. FBNet's latencies are tens of
  milliseconds, so ``log(LAT) > 1``; ours can be below 1 ms, so the log is taken of the cost
  relative to the cheapest architecture, shifted by one: ``CE * alpha * (1 + log cost)^beta``
  (the same shape, and never negative). ``beta`` trades accuracy for cost.
- Target (SqueezeNAS, against a latency or MACs budget): ``CE + penalty * |cost / target - 1|``
  (TuNAS's absolute-value form: zero at the target, pushes down above it and up below it,
  so the search spends the budget rather than undercutting it).
- Penalty (DARTS with a resource term): ``CE + lambda * (cost - 1)``.
- SNAS (Xie et al. 2019): ``CE + lambda * sum_l (c_l(z_l) - b_l) * log p(z_l)``, the resource
  cost decomposed per layer and optimised with the score function of the discrete sample
  ``z``; ``b_l`` is the layer's expected cost, a baseline that lowers the variance.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hwnas.search.supernet.costs import CostSet
from hwnas.search.supernet.relax import Relaxed

__all__ = ["FBNetLoss", "HeadLoss", "PenaltyLoss", "SNASLoss", "TargetLoss"]


class HeadLoss(abc.ABC):
    """The architecture loss of one theta head."""

    #: The trade-off value (beta, target or lambda) that tells heads apart in the front.
    tradeoff: float

    @abc.abstractmethod
    def __call__(
        self,
        task_loss: torch.Tensor,
        cost: torch.Tensor,
        *,
        relaxed: Relaxed,
        theta: Sequence[torch.Tensor],
        costs: CostSet,
    ) -> torch.Tensor: ...

    def describe(self) -> dict[str, float | str]:
        return {"loss": type(self).__name__, "tradeoff": self.tradeoff}


@dataclass
class FBNetLoss(HeadLoss):
    alpha: float
    beta: float

    @property
    def tradeoff(self) -> float:  # type: ignore[override]
        return self.beta

    def __call__(self, task_loss, cost, *, relaxed, theta, costs):  # type: ignore[no-untyped-def]
        return task_loss * self.alpha * (1.0 + torch.log(cost)).float() ** self.beta


@dataclass
class TargetLoss(HeadLoss):
    target: float  # in normalised cost units (>= 1)
    penalty: float
    fraction: float  # the user's target: a fraction of the way from cheapest to dearest

    @property
    def tradeoff(self) -> float:  # type: ignore[override]
        return self.fraction

    def __call__(self, task_loss, cost, *, relaxed, theta, costs):  # type: ignore[no-untyped-def]
        return task_loss + self.penalty * (cost / self.target - 1.0).abs().float()


@dataclass
class PenaltyLoss(HeadLoss):
    lam: float

    @property
    def tradeoff(self) -> float:  # type: ignore[override]
        return self.lam

    def __call__(self, task_loss, cost, *, relaxed, theta, costs):  # type: ignore[no-untyped-def]
        return task_loss + self.lam * (cost - 1.0).float()


@dataclass
class SNASLoss(HeadLoss):
    lam: float

    @property
    def tradeoff(self) -> float:  # type: ignore[override]
        return self.lam

    def __call__(self, task_loss, cost, *, relaxed, theta, costs):  # type: ignore[no-untyped-def]
        if self.lam == 0:
            return task_loss
        terms = []
        for layer, (logits, z) in enumerate(zip(theta, relaxed.hard)):
            c = costs.per_layer(layer).to(logits.device)
            log_p = torch.log_softmax(logits, dim=0)
            baseline = (log_p.detach().exp().double() * c).sum()
            terms.append((c[z] - baseline).float() * log_p[z])
        return task_loss + self.lam * torch.stack(terms).sum()


def check_finite(name: str, values: Sequence[float]) -> list[float]:
    """``values`` as floats; ValueError naming the option when one is not a finite number."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a list of numbers, got {list(values)!r}")
        out.append(float(v))
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out
