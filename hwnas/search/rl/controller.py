"""Controller: a policy that turns the embedding of a network into transformations of it.

The parent's layer tokens go through a bidirectional GRU (the network embedding); for every
layer, a head reads that layer's state, the whole network's embedding and the preference
vector the reward will use, and outputs logits over the layer's actions: ``keep`` or change
to one of the other choices the space allows at that position (another op, kernel,
expansion or width; ``skip`` / ``identity`` / ``none`` where allowed removes the layer, and
changing away from it inserts one). Actions are sampled per layer and applied together; the
transformed network is the candidate. Trained by REINFORCE (or PPO, see
:mod:`hwnas.search.rl.ppo`) with a moving-average baseline per preference vector and an
entropy bonus.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from hwnas.search.rl.embedding import EnsembleGRU, EnsembleLinear
from hwnas.search.rl.ppo import PolicyUpdate, policy_update
from hwnas.search.rl.state import tensors_from_text, tensors_to_text
from hwnas.search.rl.tokens import SpaceCodec


class MovingBaseline:
    """REINFORCE baseline: a moving average of the reward per group (preference vector)."""

    def __init__(self, *, groups: int, decay: float) -> None:
        self.decay = decay
        self.values: list[float | None] = [None] * groups

    def advantages(self, groups: np.ndarray, reward: np.ndarray) -> np.ndarray:
        """Reward minus its group's baseline (before this batch updates it), scaled to unit
        spread; a group seen for the first time is baselined by its batch mean."""
        baseline = np.array([np.nan if b is None else b for b in self.values])
        for i in np.unique(groups):
            mean = float(reward[groups == i].mean())
            old = self.values[i]
            self.values[i] = mean if old is None else self.decay * old + (1.0 - self.decay) * mean
            if np.isnan(baseline[i]):
                baseline[i] = mean
        advantage = reward - baseline[groups]
        return advantage / (advantage.std() + 1e-8)


class Controller(torch.nn.Module):
    """Policy over per-layer transformations, conditioned on a preference vector."""

    def __init__(
        self,
        *,
        codec: SpaceCodec,
        objectives: int,
        hidden: int,
        expected_changes: float,
        lr: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.codec = codec
        self.encoder = EnsembleGRU(2, codec.token_size, hidden, generator=generator)
        self.pref = EnsembleLinear(1, objectives, hidden, generator=generator)
        self.hidden = EnsembleLinear(1, 5 * hidden, hidden, generator=generator)
        # One output layer per position: a head shared by all layers collapses to the single
        # action that helps most layers at once.
        self.out = EnsembleLinear(codec.positions, hidden, 1 + codec.max_card, generator=generator)
        # Start by changing about `expected_changes` layers: the keep logit of a layer with C
        # choices is log(p_keep (C - 1) / (1 - p_keep)) against 0 for each of the C - 1 others.
        p_keep = min(max(1.0 - expected_changes / codec.positions, 0.05), 0.99)
        others = np.maximum(codec.cards - 1, 1)
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()
            self.out.bias[:, 0, 0] = torch.from_numpy(np.log(p_keep * others / (1.0 - p_keep)))
        mask = np.ones((codec.positions, 1 + codec.max_card), dtype=bool)
        mask[:, 1:] = codec.option_mask
        self.register_buffer("valid", torch.from_numpy(mask), persistent=False)
        # Adam's moments persist across rounds (and in the state): the policy gradient is
        # noisy, and a fresh Adam would take sign-sized steps every round.
        self.optimiser = torch.optim.Adam(self.parameters(), lr=lr)
        self._text: str | None = None

    def logits(self, parents: np.ndarray, prefs: np.ndarray) -> torch.Tensor:
        """(N, positions, 1 + max_card) action logits; invalid actions at -inf."""
        tokens = torch.from_numpy(self.codec.token_batch(parents))
        both = torch.stack([tokens, tokens.flip(1)])  # member 0 reads forwards, 1 backwards
        states = self.encoder.sequence(both)
        per_layer = torch.cat([states[0], states[1].flip(1)], dim=-1)  # (N, P, 2H)
        summary = torch.cat([states[0, :, -1], states[1, :, -1]], dim=-1)  # (N, 2H)
        pref = torch.relu(self.pref(torch.from_numpy(prefs).float()[None]))[0]  # (N, H)
        n, positions, _ = per_layer.shape
        context = torch.cat([summary, pref], dim=-1)[:, None].expand(n, positions, -1)
        features = torch.cat([per_layer, context], dim=-1).reshape(1, n * positions, -1)
        hidden = torch.tanh(self.hidden(features))[0].reshape(n, positions, -1)
        logits = self.out(hidden.transpose(0, 1)).transpose(0, 1)  # (N, P, actions)
        current = torch.zeros_like(logits, dtype=torch.bool)
        current.scatter_(2, torch.from_numpy(parents + 1)[:, :, None], True)
        allowed = self.valid[None] & ~current  # changing to the current choice is `keep`
        return logits.masked_fill(~allowed, -math.inf)

    def sample(
        self, parents: np.ndarray, prefs: np.ndarray, generator: torch.Generator
    ) -> np.ndarray:
        """Children (N, positions) of ``parents`` under the policy (no gradient)."""
        with torch.no_grad():
            probs = torch.softmax(self.logits(parents, prefs), dim=-1)
            flat = probs.reshape(-1, probs.shape[-1])
            actions = torch.multinomial(flat, 1, generator=generator).reshape(parents.shape)
        actions = actions.numpy()
        return np.where(actions == 0, parents, actions - 1)

    def log_prob(
        self, parents: np.ndarray, children: np.ndarray, prefs: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of the transformation parent -> child, and the policy's entropy."""
        logits = self.logits(parents, prefs)
        logp_all = torch.log_softmax(logits, dim=-1)
        actions = np.where(children == parents, 0, children + 1)
        logp = logp_all.gather(2, torch.from_numpy(actions)[:, :, None])[:, :, 0].sum(dim=1)
        probs = logp_all.exp()
        entropy = -(probs * logp_all.masked_fill(probs == 0, 0.0)).sum(dim=-1).sum(dim=1)
        return logp, entropy

    def reinforce(
        self,
        parents: np.ndarray,
        children: np.ndarray,
        prefs: np.ndarray,
        advantages: np.ndarray,
        *,
        entropy_coef: float,
        update: PolicyUpdate | None = None,
    ) -> float:
        """One policy update (REINFORCE, or PPO's epochs when ``update`` says so); returns
        the loss. Advantages come baselined and scaled."""
        rule = update if update is not None else PolicyUpdate(entropy_coef=entropy_coef)
        stats = policy_update(
            lambda: self.log_prob(parents, children, prefs),
            torch.from_numpy(advantages).float(),
            optimiser=self.optimiser,
            parameters=self.parameters(),
            update=rule,
        )
        self._text = None
        return stats["loss"]

    def expected_reward(
        self,
        parents: np.ndarray,
        prefs: np.ndarray,
        reward: Any,
        generator: torch.Generator,
        samples: int = 8,
    ) -> float:
        """Monte Carlo estimate of E[reward(child)] under the policy (for tests and logs)."""
        total = 0.0
        for _ in range(samples):
            total += float(np.mean(reward(self.sample(parents, prefs, generator))))
        return total / samples

    # -- state -----------------------------------------------------------------------------
    def weights_text(self) -> str:
        """Weights and Adam's moments as base64 safetensors text (cached until changed)."""
        if self._text is None:
            tensors = dict(self.state_dict())
            for i, moments in self.optimiser.state_dict()["state"].items():
                for name, value in moments.items():
                    tensors[f"adam.{i}.{name}"] = torch.as_tensor(value).reshape(-1)
            self._text = tensors_to_text(tensors)
        return self._text

    def load_weights_text(self, text: str) -> None:
        tensors = tensors_from_text(text)
        adam: dict[int, dict[str, torch.Tensor]] = {}
        for key in [k for k in tensors if k.startswith("adam.")]:
            _, i, name = key.split(".", 2)
            value = tensors.pop(key)
            adam.setdefault(int(i), {})[name] = value.reshape(()) if name == "step" else value
        self.load_state_dict(tensors)
        params = dict(enumerate(self.parameters()))
        for i, moments in adam.items():
            for name in ("exp_avg", "exp_avg_sq"):
                moments[name] = moments[name].reshape(params[i].shape)
        state = self.optimiser.state_dict()
        state["state"] = adam
        self.optimiser.load_state_dict(state)
        self._text = text
