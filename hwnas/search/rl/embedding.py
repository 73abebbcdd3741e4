"""Network embedding: a GRU over a genotype's layer tokens, for an ensemble at once.

Every parameter has a leading ``members`` axis, so an ensemble of K independent encoders
(and the heads in :class:`EnsembleLinear`) runs as batched matrix products: one pass trains
all members, which is what keeps a 500-evaluation tabular run within seconds.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> nn.Parameter:
    return nn.Parameter((torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound)


class EnsembleLinear(nn.Module):
    """K independent linear layers: (K, N, inputs) -> (K, N, outputs)."""

    def __init__(
        self, members: int, inputs: int, outputs: int, *, generator: torch.Generator
    ) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(max(inputs, 1))
        self.weight = _uniform((members, inputs, outputs), bound, generator)
        self.bias = _uniform((members, 1, outputs), bound, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleGRU(nn.Module):
    """K independent single-layer GRUs over a token sequence (PyTorch's GRU equations)."""

    def __init__(
        self, members: int, inputs: int, hidden: int, *, generator: torch.Generator
    ) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden)
        self.hidden = hidden
        self.w_ih = _uniform((members, inputs, 3 * hidden), bound, generator)
        self.w_hh = _uniform((members, hidden, 3 * hidden), bound, generator)
        self.b_ih = _uniform((members, 1, 1, 3 * hidden), bound, generator)
        self.b_hh = _uniform((members, 1, 3 * hidden), bound, generator)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden states (K, N, L, H) for tokens ``x`` of shape (N, L, F) or (K, N, L, F)."""
        if x.dim() == 3:
            x = x[None]
        k, n, length, features = x.shape
        projected = torch.matmul(x.reshape(k, n * length, features), self.w_ih)
        projected = projected.reshape(-1, n, length, projected.shape[-1]) + self.b_ih
        H = self.hidden
        h = projected.new_zeros((projected.shape[0], n, H))
        states = []
        # Few fused ops per step: the networks are tiny, so the number of ops is the cost.
        for t in range(length):
            gx = projected[:, :, t]
            gh = torch.baddbmm(self.b_hh, h, self.w_hh)
            rz = torch.sigmoid(gx[..., : 2 * H] + gh[..., : 2 * H])
            candidate = torch.tanh(torch.addcmul(gx[..., 2 * H :], rz[..., :H], gh[..., 2 * H :]))
            h = torch.lerp(candidate, h, rz[..., H:])  # (1 - z) * candidate + z * h
            states.append(h)
        return torch.stack(states, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding (K, N, 2H): last hidden state and mean over the sequence."""
        states = self.sequence(x)
        return torch.cat([states[:, :, -1], states.mean(dim=2)], dim=-1)
