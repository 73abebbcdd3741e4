"""ENAS's controller: an LSTM that writes an architecture one decision at a time.

Decision ``p`` (a layer of ``mobilenet``, an edge of the ``nb201`` cell) reads the LSTM state
after the previous decision's embedding and outputs logits over that position's choices,
squashed as in ENAS (``tanh_constant * tanh(logits)``, so no choice's probability reaches 1
and sampling keeps exploring). The first input is a projection of the preference vector the
reward will use, so one controller learns a whole trade-off curve: sampled under another
preference it proposes another part of the front. Trained by REINFORCE or PPO
(:mod:`hwnas.search.rl.ppo`) with Adam; the weights are initialised uniform in
[-0.1, 0.1] as in ENAS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hwnas.search.rl.ppo import PolicyUpdate, policy_update

__all__ = ["LSTMController"]


class LSTMController(nn.Module):
    """Autoregressive policy over ``len(cards)`` categorical decisions (``cards[p]`` choices)."""

    def __init__(
        self,
        *,
        cards: Sequence[int],
        objectives: int,
        hidden: int = 32,
        lr: float = 0.0035,
        tanh_constant: float = 2.5,
        seed: int = 0,
        update: PolicyUpdate | None = None,
    ) -> None:
        super().__init__()
        if not cards or min(cards) < 1:
            raise ValueError(f"every decision needs at least one choice, got {list(cards)}")
        self.cards = [int(c) for c in cards]
        self.positions = len(self.cards)
        self.max_card = max(self.cards)
        self.tanh_constant = float(tanh_constant)
        self.update_rule = update if update is not None else PolicyUpdate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.pref = nn.Linear(objectives, hidden)
            self.embed = nn.Embedding(self.positions * self.max_card, hidden)
            self.cell = nn.LSTMCell(hidden, hidden)
            self.out_w = nn.Parameter(torch.empty(self.positions, hidden, self.max_card))
            self.out_b = nn.Parameter(torch.zeros(self.positions, self.max_card))
            for p in self.parameters():
                nn.init.uniform_(p, -0.1, 0.1)
        valid = torch.zeros(self.positions, self.max_card, dtype=torch.bool)
        for p, c in enumerate(self.cards):
            valid[p, :c] = True
        self.register_buffer("valid", valid, persistent=False)
        self.optimiser = torch.optim.Adam(self.parameters(), lr=lr)

    def _decode(
        self,
        prefs: torch.Tensor,
        actions: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions (N, P), log-probabilities (N,), entropies (N,)); samples the actions
        unless given."""
        n = prefs.shape[0]
        inp = torch.tanh(self.pref(prefs.float()))
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        chosen, logp, entropy = [], torch.zeros(n), torch.zeros(n)
        for p in range(self.positions):
            state = self.cell(inp, state)
            raw = state[0] @ self.out_w[p] + self.out_b[p]
            logits = self.tanh_constant * torch.tanh(raw)
            logits = logits.masked_fill(~self.valid[p], -torch.inf)
            log_probs = torch.log_softmax(logits, dim=-1)
            if actions is not None:
                a = actions[:, p]
            elif greedy:
                a = log_probs.argmax(dim=-1)
            else:
                a = torch.multinomial(log_probs.exp(), 1, generator=generator)[:, 0]
            chosen.append(a)
            logp = logp + log_probs.gather(1, a[:, None])[:, 0]
            probs = log_probs.exp()
            entropy = entropy - (probs * log_probs.masked_fill(probs == 0, 0.0)).sum(dim=-1)
            inp = self.embed(p * self.max_card + a)
        return torch.stack(chosen, dim=1), logp, entropy

    def sample(self, prefs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """(N, P) choice indices drawn under preference vectors ``prefs`` (N, m)."""
        with torch.no_grad():
            actions, _, _ = self._decode(torch.from_numpy(np.asarray(prefs)), generator=generator)
        return actions.numpy()

    def greedy(self, prefs: np.ndarray) -> np.ndarray:
        """(N, P) most likely choice at each step (given the greedy choices before it)."""
        with torch.no_grad():
            actions, _, _ = self._decode(torch.from_numpy(np.asarray(prefs)), greedy=True)
        return actions.numpy()

    def log_prob(self, prefs: np.ndarray, actions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities (N,) of ``actions`` under ``prefs`` and the entropies (N,)."""
        _, logp, entropy = self._decode(
            torch.from_numpy(np.asarray(prefs)), actions=torch.from_numpy(np.asarray(actions))
        )
        return logp, entropy

    def learn(self, prefs: np.ndarray, actions: np.ndarray, advantages: np.ndarray) -> dict:
        """One policy update on a batch of sampled architectures and their advantages."""
        return policy_update(
            lambda: self.log_prob(prefs, actions),
            torch.from_numpy(np.asarray(advantages, dtype=np.float32)),
            optimiser=self.optimiser,
            parameters=self.parameters(),
            update=self.update_rule,
        )
