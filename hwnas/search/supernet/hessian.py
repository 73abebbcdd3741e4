"""RobustDARTS's early stopping (Zela et al. 2020, "Understanding and Robustifying
Differentiable Architecture Search", DARTS-ES): stop a head's search when the dominant
eigenvalue of the Hessian of the validation loss with respect to its architecture logits
starts to grow, and keep the logits of ``window`` epochs earlier.

The eigenvalue comes from power iteration with Hessian-vector products (double backward
through ``torch.autograd.grad``; the Hessian is never formed). The rule: with ``mean(i)`` the
mean eigenvalue of the ``window`` search epochs ending at epoch ``i``, stop at ``i`` when
``mean(i - window) / mean(i) < ratio`` (the paper: 0.75, windows of 5 epochs of 50) and return
the architecture of epoch ``i - window``. Zela et al. found that a growing eigenvalue (a sharp
validation loss around theta) goes with the collapse into parameter-free operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["EarlyStop", "dominant_eigenvalue"]


def dominant_eigenvalue(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    iterations: int = 20,
    tolerance: float = 1e-3,
    generator: torch.Generator | None = None,
) -> float:
    """The eigenvalue of largest magnitude of the Hessian of ``loss_fn()`` with respect to
    ``params`` (tensors with ``requires_grad``), by power iteration: at most ``iterations``
    Hessian-vector products, fewer once the Rayleigh quotient changes by less than
    ``tolerance`` (relative)."""
    params = list(params)
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    if not any(g.requires_grad for g in grads):
        return 0.0  # the gradient does not depend on params: a zero Hessian
    v = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
    norm = math.sqrt(sum(float((x * x).sum()) for x in v))
    v = [x / norm for x in v]
    value = 0.0
    for _ in range(iterations):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True,
                                 allow_unused=True)  # fmt: skip
        hv = tuple(torch.zeros_like(p) if h is None else h for h, p in zip(hv, params))
        new = sum(float((h * x).sum()) for h, x in zip(hv, v))  # Rayleigh quotient, |v| = 1
        norm = math.sqrt(sum(float((h * h).sum()) for h in hv))
        if norm == 0.0:
            return 0.0
        v = [h.detach() / norm for h in hv]
        if abs(new - value) <= tolerance * max(abs(new), 1e-12):
            return new
        value = new
    return value


@dataclass
class EarlyStop:
    """DARTS-ES's rule for several heads; JSON-able state for checkpoints."""

    heads: int
    window: int = 2
    ratio: float = 0.75
    #: Per search epoch: (epoch, eigenvalue per head or None for a stopped head).
    history: list[tuple[int, list[float | None]]] = field(default_factory=list)
    #: Per search epoch: every head's logits after it (for the return to ``i - window``).
    snapshots: list[list[list[list[float]]]] = field(default_factory=list)
    #: Per head: None while searching, else {"epoch", "restored_epoch", "ratio"}.
    stopped: list[dict[str, Any] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.window < 1 or not 0 < self.ratio < 1:
            raise ValueError(f"need window >= 1 and 0 < ratio < 1, got {self.window}, {self.ratio}")
        if not self.stopped:
            self.stopped = [None] * self.heads

    @property
    def active(self) -> list[int]:
        return [h for h in range(self.heads) if self.stopped[h] is None]

    @property
    def all_stopped(self) -> bool:
        return not self.active

    def observe(
        self, epoch: int, eigenvalues: Sequence[float | None], theta: Sequence[Sequence[Any]]
    ) -> dict[int, list[list[float]]]:
        """Record epoch ``epoch``'s eigenvalues and logits; returns the heads that stop now,
        each with the logits to restore (those of ``window`` epochs earlier)."""
        self.history.append((epoch, list(eigenvalues)))
        self.snapshots.append(
            [[torch.as_tensor(t).detach().flatten().tolist() for t in head] for head in theta]
        )
        stops: dict[int, list[list[float]]] = {}
        w = self.window
        if len(self.history) < 2 * w:
            return stops
        for h in self.active:
            recent = [values[h] for _, values in self.history[-w:]]
            earlier = [values[h] for _, values in self.history[-2 * w : -w]]
            if any(v is None for v in recent + earlier):
                continue
            now, before = sum(recent) / w, sum(earlier) / w  # type: ignore[arg-type]
            if now > 0 and before / now < self.ratio:
                restored = self.history[-w - 1][0]
                self.stopped[h] = {"epoch": epoch, "restored_epoch": restored,
                                   "ratio": round(before / now, 4)}  # fmt: skip
                stops[h] = self.snapshots[-w - 1][h]
        return stops

    def to_json(self) -> dict[str, Any]:
        return {
            "heads": self.heads, "window": self.window, "ratio": self.ratio,
            "history": [[e, v] for e, v in self.history], "snapshots": self.snapshots,
            "stopped": self.stopped,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EarlyStop:
        return cls(
            heads=int(data["heads"]), window=int(data["window"]), ratio=float(data["ratio"]),
            history=[(int(e), list(v)) for e, v in data["history"]],
            snapshots=data["snapshots"], stopped=list(data["stopped"]),
        )  # fmt: skip
