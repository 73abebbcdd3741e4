"""ENAS training: shared weights and an LSTM controller, alternately, on separate data.

Every weight step trains the path of one architecture the controller samples (a one-hot path
of the ``mobilenet`` :class:`~hwnas.search.supernet.network.Supernet` or the ``nb201``
:class:`~hwnas.search.supernet.cell.CellSupernet`) on a batch of the weights part; after the warm-up
epochs, ``controller_steps`` controller updates per epoch are interleaved: each samples
``rollouts`` architectures under preference vectors, scores each on one batch of the
architecture part with the shared weights (accuracy; hardware costs from the strategy's
``score``), turns the objective rows into rewards with the reward engine
(:mod:`hwnas.search.rl.reward`, normalised by the front of the recent rows) and updates
the controller (REINFORCE or PPO) on advantages against a moving baseline per preference.

It reuses :class:`~hwnas.search.supernet.trainer.SupernetTrainer`'s epoch loop, optimiser, schedule
and checkpoints (``run_dir/strategy/supernet/``): every random choice of an epoch is seeded
from the seed and the epoch, and the controller, its optimiser, the baselines and the reward
history are checkpointed with the weights, so a killed search resumes from its last epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.search.rl.controller import MovingBaseline
from hwnas.search.rl.lstm import LSTMController
from hwnas.search.rl.reward import RewardEngine
from hwnas.search.supernet.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from hwnas.search.supernet.tasks import SupernetTask
from hwnas.search.supernet.trainer import SupernetSettings, SupernetTrainer, _cosine
from hwnas.spaces.base import SearchSpace
from hwnas.types import Genotype

__all__ = ["ENASSettings", "ENASTrainer", "SharedNetwork"]

#: Objective rows (N, m) sign-adjusted, and constraint violations (N,), of architectures
#: (N, positions) with their one-shot accuracies (N,) in percent.
Score = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ENASSettings:
    """The controller's side of the search."""

    controller_steps: int = 10
    rollouts: int = 8
    history: int = 256


class SharedNetwork:
    """The weight-sharing network of a space, run on one architecture's path at a time."""

    def __init__(self, space: SearchSpace, task: SupernetTask, *, seed: int) -> None:
        from hwnas.spaces.mobilenet import MobileNetSpace
        from hwnas.spaces.nb201 import NB201Space

        self.space = space
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if isinstance(space, NB201Space):
                from hwnas.search.supernet.cell import CellSupernet

                self.model: nn.Module = CellSupernet(
                    num_classes=task.num_classes,
                    in_channels=task.in_channels,
                    channels=space.channels,
                    cells_per_stage=space.cells_per_stage,
                )
            else:
                from hwnas.search.supernet.network import Supernet

                assert isinstance(space, MobileNetSpace)
                self.model = Supernet(space, head=task.make_head(), in_channels=task.in_channels)
        self.cards = [len(o) for o in space.options()]  # type: ignore[attr-defined]

    def __call__(self, x: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
        device = x.device
        rows = [torch.zeros(c, device=device) for c in self.cards]
        for row, j in zip(rows, indices):
            row[int(j)] = 1.0
        if isinstance(self.space, _nb201()):
            return self.model(x, torch.stack(rows))
        return self.model(x, rows, [[int(j)] for j in indices])

    def extract(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        if isinstance(self.space, _nb201()):
            return self.model.extract_state(genotype)  # type: ignore[operator]
        from hwnas.search.supernet.network import extract_state

        return extract_state(self.model.state_dict(), self.space, genotype)  # type: ignore[arg-type]


def _nb201() -> type:
    from hwnas.spaces.nb201 import NB201Space

    return NB201Space


@contextlib.contextmanager
def one_shot_mode(model: nn.Module) -> Iterator[None]:
    """Score a path with batch statistics (the running ones mix every path) and no dropout,
    leaving the running statistics as they were."""
    was_training = model.training
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
    try:
        with torch.no_grad():
            yield
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        model.train(was_training)


class ENASTrainer(SupernetTrainer):
    """Trains the shared weights and the controller (see the module docstring)."""

    def __init__(
        self,
        *,
        task: SupernetTask,
        space: SearchSpace,
        controller: LSTMController,
        engine: RewardEngine,
        preferences: np.ndarray,
        score: Score,
        settings: SupernetSettings,
        enas: ENASSettings,
        baseline_decay: float = 0.9,
        device: torch.device | str = "cpu",
        checkpoint_dir: Path | None = None,
        log: Callable[..., None] | None = None,
        describe: dict[str, Any] | None = None,
    ) -> None:
        # Not SupernetTrainer.__init__: no theta heads, no relaxation; the rest is shared.
        self.task = task
        self.space = space
        self.settings = settings
        self.enas = enas
        self.device = torch.device(device)
        self.checkpoint_dir = checkpoint_dir
        self.log = log or (lambda kind, **data: None)
        self.shared = SharedNetwork(space, task, seed=settings.seed)
        self.model = self.shared.model.to(self.device)
        self.controller = controller
        self.engine = engine
        self.preferences = np.asarray(preferences, dtype=float)
        self.score = score
        self.baseline = MovingBaseline(groups=len(self.preferences), decay=baseline_decay)
        self.history = np.zeros((0, len(engine.objectives)))
        self.weights_part, self.arch_part = task.search_parts(settings.seed)
        self.steps_per_epoch = task.steps(self.weights_part)
        self.opt_w = self._weight_optimizer()
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.opt_w, _cosine(settings.epochs * self.steps_per_epoch)
        )
        self.epoch = 0
        self.train_seconds = 0.0
        self.last_stats: dict[str, Any] = {}
        self.fingerprint = self._enas_fingerprint(describe or {})
        if checkpoint_dir is not None:
            found = load_checkpoint(checkpoint_dir, fingerprint=self.fingerprint)
            if found is not None:
                self._restore(found)

    def _enas_fingerprint(self, describe: dict[str, Any]) -> str:
        data = {
            "settings": asdict(self.settings),
            "enas": asdict(self.enas),
            "strategy": describe,
            "task": self.task.describe(),
            "space": self.space.config(),
            "parts": [len(self.weights_part), len(self.arch_part)],
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- checkpoints ------------------------------------------------------------------------
    def _restore(self, found: Checkpoint) -> None:
        self.model.load_state_dict(found.model)
        with torch.no_grad():
            for p, value in zip(self.controller.parameters(), found.theta[0]):
                p.copy_(value)
        self.opt_w.load_state_dict(found.optim["weights"])
        self.controller.optimiser.load_state_dict(found.optim["controller"])
        self.schedule.load_state_dict(found.optim["schedule"])
        self.epoch = found.epoch
        self.train_seconds = float(found.meta.get("train_seconds", 0.0))
        self.baseline.values = [None if b is None else float(b) for b in found.meta["baseline"]]
        history = np.asarray(found.meta["history"], dtype=float)
        self.history = history.reshape(-1, self.history.shape[1])

    def _save(self) -> None:
        if self.checkpoint_dir is None:
            return
        optim = {
            "weights": self.opt_w.state_dict(),
            "controller": self.controller.optimiser.state_dict(),
            "schedule": self.schedule.state_dict(),
        }
        meta = {
            "fingerprint": self.fingerprint,
            "train_seconds": self.train_seconds,
            "baseline": list(self.baseline.values),
            "history": self.history.tolist(),
        }
        theta = [[p.detach() for p in self.controller.parameters()]]
        save_checkpoint(
            self.checkpoint_dir, Checkpoint(self.epoch, dict(self.model.state_dict()), theta,
                                            optim, meta)
        )  # fmt: skip

    # -- training ---------------------------------------------------------------------------
    def _epoch(self, epoch: int) -> dict[str, Any]:
        s = self.settings
        seed = s.seed * 100_003 + epoch * 17
        searching = epoch >= s.warmup_epochs
        draws = torch.Generator().manual_seed(seed)
        weights_batches = self.task.batches(self.weights_part, seed=seed + 1, device=self.device)
        arch_batches = self.task.batches(self.arch_part, seed=seed + 2, device=self.device)
        steps, arch_steps = self.steps_per_epoch, self.enas.controller_steps
        losses: list[float] = []
        rewards: list[float] = []
        accuracies: list[float] = []
        started = time.perf_counter()
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed + 3)  # dropout
            self.model.train()
            for step in range(steps):
                losses.append(self._path_step(next(weights_batches), draws))
                if searching and (step + 1) * arch_steps // steps > step * arch_steps // steps:
                    for _ in range((step + 1) * arch_steps // steps - step * arch_steps // steps):
                        reward, accuracy = self._controller_step(next(arch_batches), draws)
                        rewards.append(reward)
                        accuracies.append(accuracy)
        self.last_stats = {
            "epoch": epoch + 1,
            "phase": "search" if searching else "warmup",
            "weight_loss": float(np.mean(losses)),
            "mean_reward": float(np.mean(rewards)) if rewards else None,
            "one_shot_accuracy": float(np.mean(accuracies)) if accuracies else None,
            "controller_entropy": self._entropy(),
            "epoch_seconds": round(time.perf_counter() - started, 3),
        }
        return self.last_stats

    def _path_step(self, batch: tuple[torch.Tensor, torch.Tensor], draws: torch.Generator) -> float:
        x, y = batch
        pick = int(torch.randint(len(self.preferences), (1,), generator=draws))
        pref = self.preferences[[pick]]
        path = self.controller.sample(pref, draws)[0]
        loss = self.task.loss(self.shared(x, path), y)
        self.opt_w.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.opt_w.step()
        self.schedule.step()
        return self._finite(loss, "weight")

    def accuracies(
        self, archs: np.ndarray, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> np.ndarray:
        """One-shot accuracy (%) of each architecture with the shared weights on ``batches``."""
        out = np.zeros(len(archs))
        done: dict[tuple[int, ...], float] = {}
        with one_shot_mode(self.model):
            for i, arch in enumerate(archs):
                key = tuple(int(j) for j in arch)
                if key not in done:
                    correct = total = 0
                    for x, y in batches:
                        correct += int((self.shared(x, key).argmax(1) == y).sum())
                        total += len(y)
                    done[key] = 100.0 * correct / max(total, 1)
                out[i] = done[key]
        return out

    def _controller_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], draws: torch.Generator
    ) -> tuple[float, float]:
        ids = torch.randint(len(self.preferences), (self.enas.rollouts,), generator=draws).numpy()
        prefs = self.preferences[ids]
        archs = self.controller.sample(prefs, draws)
        accuracy = self.accuracies(archs, [batch])
        rows, violation = self.score(archs, accuracy)
        self.history = np.concatenate([self.history, rows])[-self.enas.history :]
        self.engine.set_reference(self.history)
        reward = self.engine(rows, prefs, violation)
        advantage = self.baseline.advantages(ids, reward)
        self.controller.learn(prefs, archs, advantage)
        return float(reward.mean()), float(accuracy.mean())

    def _entropy(self) -> float:
        with torch.no_grad():
            _, entropy = self.controller.log_prob(
                self.preferences, self.controller.greedy(self.preferences)
            )
        return float(entropy.mean())

    # -- results ----------------------------------------------------------------------------
    def head_summaries(self) -> list[dict[str, Any]]:
        return []

    def extract(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The stand-alone network's weights for ``genotype``, cut from the shared weights."""
        return self.shared.extract(genotype)
