"""Policy-gradient updates shared by the RL controllers (``rl``, ``enas``): REINFORCE or PPO.

``reinforce``: one step on ``-mean(A * log pi(a)) - c_H * H``.
``ppo`` (Schulman et al. 2017, as NASNet trains its controller): ``epochs`` steps on the same
batch of the clipped surrogate ``-mean(min(r A, clip(r, 1 - eps, 1 + eps) A)) - c_H * H`` with
``r = pi(a) / pi_old(a)``, ``pi_old`` the policy that sampled the batch. Once a sample's ratio
leaves ``[1 - eps, 1 + eps]`` in the direction its advantage favours, its gradient is zero, so
several epochs on one batch cannot move the policy far from the one that collected it.

The update itself keeps no state of its own: the optimiser's moments live with the controller
(and in its ``state_dict``); the options (``update``, ``clip``, ``epochs``) are constructor
options of the strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

__all__ = ["UPDATES", "PolicyUpdate", "clipped_surrogate", "policy_update"]

UPDATES = ("reinforce", "ppo")


@dataclass(frozen=True)
class PolicyUpdate:
    """How a controller learns from a batch of (action, advantage) pairs."""

    kind: str = "reinforce"
    clip: float = 0.2
    epochs: int = 4
    entropy_coef: float = 0.01
    max_grad_norm: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(UPDATES)}, got {self.kind!r}")
        if not 0 < self.clip < 1:
            raise ValueError(f"ppo_clip must be in (0, 1), got {self.clip!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"ppo_epochs must be a whole number >= 1, got {self.epochs!r}")


def clipped_surrogate(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped objective to minimise (a scalar) and the share of clipped samples."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    loss = -torch.minimum(unclipped, clipped).mean()
    share = ((ratio - 1.0).abs() > clip).float().mean()
    return loss, share


def policy_update(
    evaluate: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    advantages: torch.Tensor,
    *,
    optimiser: torch.optim.Optimizer,
    parameters: Iterable[torch.nn.Parameter],
    update: PolicyUpdate,
) -> dict[str, float]:
    """Update the policy on one batch. ``evaluate()`` returns the batch's log-probabilities
    under the current policy and its entropies (both (N,), with gradients); ``advantages``
    (N,) come baselined. Returns the last loss, the steps taken, the share of clipped
    samples and the approximate KL divergence from the sampling policy (PPO only)."""
    params = list(parameters)
    adv = advantages.detach().float()
    if update.kind == "reinforce":
        logp, entropy = evaluate()
        loss = -(adv * logp).mean() - update.entropy_coef * entropy.mean()
        _step(loss, optimiser, params, update.max_grad_norm)
        return {"loss": float(loss.detach()), "steps": 1.0}
    old: torch.Tensor | None = None
    stats: dict[str, float] = {}
    for epoch in range(update.epochs):
        logp, entropy = evaluate()
        if old is None:
            old = logp.detach()
        surrogate, share = clipped_surrogate(logp, old, adv, update.clip)
        loss = surrogate - update.entropy_coef * entropy.mean()
        _step(loss, optimiser, params, update.max_grad_norm)
        stats = {
            "loss": float(loss.detach()),
            "steps": float(epoch + 1),
            "clipped": float(share),
            "approx_kl": float((old - logp.detach()).mean()),
        }
    return stats


def _step(
    loss: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    max_grad_norm: float,
) -> None:
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimiser.step()
