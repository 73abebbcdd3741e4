"""FBNet, SqueezeNAS, DARTS and SNAS: one theta head per trade-off value on a shared supernet
(see :mod:`hwnas.search.supernet.base`). Each takes its own options and passes the rest
(``**common``: the supernet's, the search space, objectives, seed) to
:class:`SupernetStrategy`; ``make_strategy`` follows that chain to list and check options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hwnas.search.supernet.base import SupernetStrategy, _number, _numbers, _whole

if TYPE_CHECKING:
    from hwnas.search.supernet.costs import CostSet
    from hwnas.search.supernet.losses import HeadLoss

__all__ = ["DARTSSearch", "FBNetSearch", "SNASSearch", "SqueezeNASSearch"]


class FBNetSearch(SupernetStrategy):
    """FBNet (Wu et al. 2019): Gumbel-softmax, ``CE * alpha * (1 + log cost)^beta``, one head
    per ``betas`` value (0 ignores the cost)."""

    name = "fbnet"
    relaxation = "gumbel"

    def __init__(
        self,
        *,
        alpha: float = 0.2,
        betas: Sequence[float] = (0.0, 0.3, 0.6, 1.2, 2.4),
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.alpha = _number("alpha", alpha, positive=True)
        self.betas = _numbers("betas", betas)
        if any(b < 0 for b in self.betas):
            raise ValueError(f"betas must be >= 0, got {self.betas}")

    def make_heads(self, costs: CostSet) -> list[HeadLoss]:
        from hwnas.search.supernet.losses import FBNetLoss

        return [FBNetLoss(self.alpha, b) for b in self.betas]


class SqueezeNASSearch(SupernetStrategy):
    """SqueezeNAS-style search against cost targets: ``CE + penalty * |cost / target - 1|``.

    ``targets`` are fractions of the way from the cheapest (0) to the most expensive (1)
    architecture of the combined cost; one head per target.
    """

    name = "squeezenas"
    relaxation = "gumbel"

    def __init__(
        self,
        *,
        targets: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
        penalty: float = 2.0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.targets = _numbers("targets", targets)
        if any(not 0 <= t <= 1 for t in self.targets):
            raise ValueError(
                f"targets are fractions from the cheapest (0) to the dearest (1) architecture, "
                f"got {self.targets}"
            )
        self.penalty = _number("penalty", penalty, positive=True)

    def make_heads(self, costs: CostSet) -> list[HeadLoss]:
        from hwnas.search.supernet.losses import TargetLoss

        low, high = costs.normalised_bounds()
        return [TargetLoss(low + f * (high - low), self.penalty, f) for f in self.targets]


class _PenaltySearch(SupernetStrategy):
    def __init__(
        self,
        *,
        lambdas: Sequence[float] = (0.0, 0.1, 0.3, 1.0, 3.0),
        robust: str = "none",
        robust_epsilon: float = 0.3,
        robust_beta: float = 1.0,
        es_window: int = 2,
        es_ratio: float = 0.75,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.lambdas = _numbers("lambdas", lambdas)
        if any(v < 0 for v in self.lambdas):
            raise ValueError(f"lambdas must be >= 0, got {self.lambdas}")
        from hwnas.search.supernet.robust import ROBUST

        if robust not in ROBUST:
            raise ValueError(
                f"robust must be one of {', '.join(ROBUST)} (sdarts-rs: SDARTS random "
                f"smoothing; hessian-es: RobustDARTS's early stopping; darts-minus: DARTS-'s "
                f"decaying auxiliary skip), got {robust!r}"
            )
        from hwnas.spaces.nb201 import NB201Space

        if robust == "darts-minus" and not isinstance(self.space, NB201Space):
            raise ValueError(
                "robust=darts-minus adds a skip to every edge and needs --space nb201 (mobilenet "
                "layers change shape); use robust=sdarts-rs or hessian-es there"
            )
        self.robust = robust
        self.robust_epsilon = _number("robust_epsilon", robust_epsilon, positive=True)
        if self.robust_epsilon > 1:
            raise ValueError(f"robust_epsilon must be in (0, 1], got {self.robust_epsilon}")
        self.robust_beta = _number("robust_beta", robust_beta, positive=True)
        if self.robust_beta > 10:
            raise ValueError(f"robust_beta must be in (0, 10] (DARTS-: 1), got {robust_beta!r}")
        self.es_window = _whole("es_window", es_window, low=1)  # type: ignore[assignment]
        self.es_ratio = _number("es_ratio", es_ratio)
        if not 0 < self.es_ratio < 1:
            raise ValueError(f"es_ratio must be in (0, 1), got {es_ratio!r}")


class DARTSSearch(_PenaltySearch):
    """DARTS (Liu et al. 2019): softmax(theta) weights every candidate, no noise and no
    temperature; the resource term ``lambda * (cost - 1)`` is added per head."""

    name = "darts"
    relaxation = "softmax"

    def make_heads(self, costs: CostSet) -> list[HeadLoss]:
        from hwnas.search.supernet.losses import PenaltyLoss

        return [PenaltyLoss(v) for v in self.lambdas]


class SNASSearch(_PenaltySearch):
    """SNAS (Xie et al. 2019): Gumbel-softmax weights, and the resource cost decomposed per
    layer and optimised through the score function of the discrete sample."""

    name = "snas"
    relaxation = "gumbel"

    def make_heads(self, costs: CostSet) -> list[HeadLoss]:
        from hwnas.search.supernet.losses import SNASLoss

        return [SNASLoss(v) for v in self.lambdas]
