"""Supernet training: network weights and architecture logits, alternately, on separate data.

Every epoch runs the weight steps on the weights part of the training data (80%) and, after
the warm-up epochs, interleaves the theta steps on the architecture part (20%) in proportion,
so both parts are passed once per epoch. Several theta heads (one per trade-off value) share
the supernet: weight steps take their path from the heads in turn, and each theta step updates
every head. The temperature is ``temperature * temperature_decay ** epoch`` (FBNet: 5.0, 0.956).

Every random choice of an epoch (batch order, augmentation, Gumbel noise, dropout) is seeded
from the run's seed and the epoch, and the state is checkpointed after each epoch (see
:mod:`hwnas.search.supernet.checkpoint`), so a killed search resumes where it stopped and ends with
the same weights and theta as an uninterrupted one (on a CPU, bit for bit).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.search.supernet.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from hwnas.search.supernet.collapse import collapse_stats
from hwnas.search.supernet.costs import CostSet
from hwnas.search.supernet.hessian import EarlyStop, dominant_eigenvalue
from hwnas.search.supernet.losses import HeadLoss
from hwnas.search.supernet.relax import PATHS, RELAXATIONS, relax
from hwnas.search.supernet.robust import (
    ROBUST,
    auxiliary_skip,
    darts_minus_beta,
    perturb,
    robust_epsilon,
)
from hwnas.search.supernet.tasks import SupernetTask
from hwnas.types import Genotype

__all__ = ["SupernetSettings", "SupernetTrainer"]


@dataclass(frozen=True)
class SupernetSettings:
    """How the supernet is trained (weights: the run's optimiser; theta: Adam, as in FBNet)."""

    epochs: int
    warmup_epochs: int = 0
    temperature: float = 5.0
    temperature_decay: float = 0.956
    relaxation: str = "gumbel"
    paths: str = "full"
    theta_lr: float = 0.01
    theta_weight_decay: float = 5e-4
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float | None = 5.0
    seed: int = 0
    robust: str = "none"
    robust_epsilon: float = 0.3
    robust_beta: float = 1.0
    theta_heads: str = "all"
    es_window: int = 2
    es_ratio: float = 0.75

    def __post_init__(self) -> None:
        for name in ("epochs", "warmup_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"supernet {name} must be a whole number >= 0, not {value!r}")
        if self.epochs < 1:
            raise ConfigError(f"supernet epochs must be at least 1, not {self.epochs}")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs}): "
                "theta needs at least one epoch of search"
            )
        if not self.temperature > 0 or not 0 < self.temperature_decay <= 1:
            raise ConfigError(
                "temperature must be > 0 and temperature_decay in (0, 1], not "
                f"{self.temperature!r} and {self.temperature_decay!r}"
            )
        if self.relaxation not in RELAXATIONS:
            raise ConfigError(f"relaxation must be one of {', '.join(RELAXATIONS)}")
        if self.paths not in PATHS:
            raise ConfigError(
                f"paths must be one of {', '.join(PATHS)} (all candidates, two sampled, or "
                f"one sampled per layer), not {self.paths!r}"
            )
        if not self.theta_lr > 0:
            raise ConfigError(f"theta_lr must be positive, not {self.theta_lr!r}")
        if self.theta_heads not in ("all", "rotate"):
            raise ConfigError(f"theta_heads must be all or rotate, not {self.theta_heads!r}")
        if self.robust not in ROBUST:
            raise ConfigError(f"robust must be one of {', '.join(ROBUST)}, not {self.robust!r}")
        if not 0 < self.robust_epsilon <= 1:
            raise ConfigError(f"robust_epsilon must be in (0, 1], not {self.robust_epsilon!r}")
        if not 0 < self.robust_beta <= 10:
            raise ConfigError(f"robust_beta must be in (0, 10], not {self.robust_beta!r}")
        if isinstance(self.es_window, bool) or not isinstance(self.es_window, int):
            raise ConfigError(f"es_window must be a whole number >= 1, not {self.es_window!r}")
        if self.es_window < 1 or not 0 < self.es_ratio < 1:
            raise ConfigError(
                f"es_window must be >= 1 and es_ratio in (0, 1), not {self.es_window!r} and "
                f"{self.es_ratio!r}"
            )

    def temperature_at(self, epoch: int) -> float:
        return self.temperature * self.temperature_decay**epoch


def _cosine(total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, total))))

    return factor


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Theta steps need no weight gradients: skipping them saves the backward's weight half."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class SupernetTrainer:
    """Trains one supernet with ``len(heads)`` theta heads (see the module docstring)."""

    #: RobustDARTS's early stopping (robust=hessian-es); None for the other remedies.
    early: EarlyStop | None = None

    def __init__(
        self,
        *,
        task: SupernetTask,
        costs: CostSet,
        heads: Sequence[HeadLoss],
        settings: SupernetSettings,
        device: torch.device | str = "cpu",
        checkpoint_dir: Path | None = None,
        log: Callable[..., None] | None = None,
    ) -> None:
        if not heads:
            raise ConfigError("a supernet search needs at least one trade-off value")
        self.task = task
        self.costs = costs
        self.heads = list(heads)
        self.settings = settings
        self.device = torch.device(device)
        self.checkpoint_dir = checkpoint_dir
        self.log = log or (lambda kind, **data: None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.model = task.make_supernet().to(self.device)
        if settings.robust == "darts-minus" and not hasattr(self.model, "aux_skip"):
            raise ConfigError(
                "robust=darts-minus adds a skip to every edge and needs the nb201 cell space "
                "(mobilenet layers change shape); use robust=sdarts-rs or hessian-es there"
            )
        self.theta = [
            [torch.zeros(n, device=self.device, requires_grad=True) for n in self.model.num_choices]
            for _ in self.heads
        ]
        self.weights_part, self.arch_part = task.search_parts(settings.seed)
        self.steps_per_epoch = task.steps(self.weights_part)
        self.arch_steps_per_epoch = task.steps(self.arch_part)
        self.opt_w = self._weight_optimizer()
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.opt_w, _cosine(settings.epochs * self.steps_per_epoch)
        )
        self.opt_t = torch.optim.Adam(
            [t for head in self.theta for t in head],
            lr=settings.theta_lr,
            weight_decay=settings.theta_weight_decay,
        )
        self.epoch = 0
        self.train_seconds = 0.0
        self._epsilon = 0.0
        self._beta = 0.0  # DARTS-'s auxiliary skip of the current step (robust=darts-minus)
        if settings.robust == "hessian-es":
            self.early = EarlyStop(len(self.heads), settings.es_window, settings.es_ratio)
        self.fingerprint = self._fingerprint()
        if checkpoint_dir is not None:
            found = load_checkpoint(checkpoint_dir, fingerprint=self.fingerprint)
            if found is not None:
                self._restore(found)

    # -- setup ------------------------------------------------------------------------------
    def _weight_optimizer(self) -> torch.optim.Optimizer:
        s = self.settings
        decay = [p for p in self.model.parameters() if p.ndim > 1]
        rest = [p for p in self.model.parameters() if p.ndim <= 1]
        groups = [
            {"params": decay, "weight_decay": s.weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ]
        if s.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum, nesterov=s.momentum > 0)
        return torch.optim.AdamW(groups, lr=s.lr)

    def _fingerprint(self) -> str:
        data = {
            "settings": asdict(self.settings),
            "heads": [h.describe() for h in self.heads],
            "costs": self.costs.metrics,
            "cost_weights": self.costs.weights,
            "task": self.task.describe(),
            "space": self.task.space.config(),
            "parts": [len(self.weights_part), len(self.arch_part)],
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _restore(self, found: Checkpoint) -> None:
        self.model.load_state_dict(found.model)
        with torch.no_grad():
            for head, saved in zip(self.theta, found.theta):
                for logits, value in zip(head, saved):
                    logits.copy_(value.to(self.device))
        self.opt_w.load_state_dict(found.optim["weights"])
        self.opt_t.load_state_dict(found.optim["theta"])
        self.schedule.load_state_dict(found.optim["schedule"])
        self.epoch = found.epoch
        self.train_seconds = float(found.meta.get("train_seconds", 0.0))
        if self.early is not None and "early_stop" in found.meta:
            self.early = EarlyStop.from_json(found.meta["early_stop"])

    def _save(self) -> None:
        if self.checkpoint_dir is None:
            return
        optim = {
            "weights": self.opt_w.state_dict(),
            "theta": self.opt_t.state_dict(),
            "schedule": self.schedule.state_dict(),
        }
        meta: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "train_seconds": self.train_seconds,
        }
        if self.early is not None:
            meta["early_stop"] = self.early.to_json()
        state = {k: v for k, v in self.model.state_dict().items()}
        save_checkpoint(self.checkpoint_dir, Checkpoint(self.epoch, state, self.theta, optim, meta))

    # -- training ---------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.epoch >= self.settings.epochs or self.stopped_early

    @property
    def stopped_early(self) -> bool:
        """Every head's search was stopped by robust=hessian-es: no epoch is left to train."""
        return self.early is not None and self.early.all_stopped

    def train(self, until: int | None = None) -> None:
        """Train up to epoch ``until`` (default: all epochs), checkpointing after each."""
        last = self.settings.epochs if until is None else min(until, self.settings.epochs)
        while self.epoch < last and not self.stopped_early:
            started = time.perf_counter()
            stats = self._epoch(self.epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.train_seconds += time.perf_counter() - started
            self.epoch += 1
            self._save()
            self.log("supernet_epoch", **stats, seconds=round(self.train_seconds, 3))
            if "heads" in stats:  # relaxations have theta heads; ENAS's controller has none
                self.log("supernet_collapse", epoch=self.epoch, heads=[
                    {"head": h["head"], "tradeoff": h["tradeoff"], **h["collapse"]}
                    for h in stats["heads"]
                ])  # fmt: skip

    def _epoch(self, epoch: int) -> dict[str, Any]:
        s = self.settings
        seed = s.seed * 100_003 + epoch * 17
        tau = s.temperature_at(epoch)
        searching = epoch >= s.warmup_epochs
        noise = torch.Generator().manual_seed(seed)
        weights_batches = self.task.batches(self.weights_part, seed=seed + 1, device=self.device)
        arch_batches = self.task.batches(self.arch_part, seed=seed + 2, device=self.device)
        steps, arch_steps = self.steps_per_epoch, self.arch_steps_per_epoch
        losses, arch_losses = [], []
        weight_s = theta_s = 0.0  # where an epoch's time goes (docs/supernet.md, cost)
        self._epsilon = robust_epsilon(s.robust, s.robust_epsilon, epoch, s.epochs)
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed + 3)  # dropout
            self.model.train()
            for step in range(steps):
                self._beta = darts_minus_beta(s.robust, s.robust_beta, epoch, step / steps,
                                              warmup=s.warmup_epochs, epochs=s.epochs)  # fmt: skip
                started = time.perf_counter()
                losses.append(self._weight_step(next(weights_batches), step, tau, noise))
                split = time.perf_counter()
                if searching and (step + 1) * arch_steps // steps > step * arch_steps // steps:
                    turn = len(arch_losses)
                    arch_losses.append(self._theta_step(next(arch_batches), tau, noise, turn))
                weight_s += split - started
                theta_s += time.perf_counter() - split
            self._beta = 0.0
            hessian = self._early_stop(epoch) if self.early is not None and searching else None
        return {
            "epoch": epoch + 1,
            "temperature": tau,
            "phase": "search" if searching else "warmup",
            "weight_loss": float(np.mean(losses)),
            "arch_loss": float(np.mean(arch_losses)) if arch_losses else None,
            "weight_step_s": round(weight_s, 3),
            "theta_step_s": round(theta_s, 3),
            **({"aux_skip": round(self._beta_at(epoch), 6)} if s.robust == "darts-minus" else {}),
            **({"hessian_eigenvalues": hessian} if hessian is not None else {}),
            "heads": self.head_summaries(),
        }

    def _weight_step(
        self,
        batch: tuple[torch.Tensor, torch.Tensor],
        step: int,
        tau: float,
        noise: torch.Generator,
    ) -> float:
        x, y = batch
        head = [t.detach() for t in self.theta[step % len(self.heads)]]
        r = relax(head, kind=self.settings.relaxation, paths=self.settings.paths,
                  temperature=tau, generator=noise)  # fmt: skip
        mix = r.mix
        if self._epsilon > 0:  # SDARTS-RS: train the weights for a neighbourhood of theta
            mix = perturb(r.mix, r.active, self._epsilon, noise)
        with auxiliary_skip(self.model, self._beta):  # DARTS-: 0 unless robust=darts-minus
            loss = self.task.loss(self.model(x, mix, r.active), y)
        self.opt_w.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.opt_w.step()
        self.schedule.step()
        return self._finite(loss, "weight")

    def _theta_step(
        self,
        batch: tuple[torch.Tensor, torch.Tensor],
        tau: float,
        noise: torch.Generator,
        turn: int = 0,
    ) -> float:
        x, y = batch
        total = 0.0
        pairs = list(zip(self.theta, self.heads))
        if self.early is not None:  # heads stopped by robust=hessian-es keep their logits
            pairs = [pairs[h] for h in self.early.active]
        if self.settings.theta_heads == "rotate":  # one head per step, in turn: 1/heads the time
            pairs = [pairs[turn % len(pairs)]]
        with _frozen(self.model), auxiliary_skip(self.model, self._beta):
            for head, objective in pairs:
                r = relax(head, kind=self.settings.relaxation, paths=self.settings.paths,
                          temperature=tau, generator=noise)  # fmt: skip
                task_loss = self.task.loss(self.model(x, r.mix, r.active), y)
                cost = self.costs.normalised(r.cost)
                loss = objective(task_loss, cost, relaxed=r, theta=head, costs=self.costs)
                self.opt_t.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_t.step()
                total += self._finite(loss, "architecture")
        return total / len(pairs)

    def _beta_at(self, epoch: int) -> float:
        """DARTS-'s auxiliary skip weight at the start of ``epoch`` (for the epoch event)."""
        s = self.settings
        return darts_minus_beta(s.robust, s.robust_beta, epoch, 0.0,
                                warmup=s.warmup_epochs, epochs=s.epochs)  # fmt: skip

    def _early_stop(self, epoch: int) -> list[float | None]:
        """RobustDARTS's rule after search epoch ``epoch``: each searching head's dominant
        Hessian eigenvalue of the validation loss w.r.t. its logits (softmax weights, all
        paths, one fixed batch of the architecture part, batch statistics; the running
        statistics are restored), then stop the heads whose eigenvalue grew."""
        assert self.early is not None
        fixed = self.settings.seed * 100_003 + 7  # the same batch every epoch: comparable values
        x, y = next(self.task.batches(self.arch_part, seed=fixed, device=self.device))
        buffers = {k: v.clone() for k, v in self.model.named_buffers()}
        start = torch.Generator().manual_seed(fixed + epoch)
        values: list[float | None] = [None] * len(self.heads)
        with _frozen(self.model):
            for h in self.early.active:

                def loss(h: int = h) -> torch.Tensor:
                    mix = [torch.softmax(t, dim=0) for t in self.theta[h]]
                    active = [list(range(t.numel())) for t in self.theta[h]]
                    return self.task.loss(self.model(x, mix, active), y)

                values[h] = round(dominant_eigenvalue(loss, self.theta[h], generator=start), 6)
        with torch.no_grad():
            for k, v in self.model.named_buffers():
                v.copy_(buffers[k])
        stops = self.early.observe(epoch + 1, values, self.theta)
        for h, logits in stops.items():
            with torch.no_grad():
                for t, saved in zip(self.theta[h], logits):
                    t.copy_(torch.tensor(saved, dtype=t.dtype, device=t.device))
            self.log("supernet_early_stop", head=h, tradeoff=self.heads[h].tradeoff,
                     **self.early.stopped[h])  # fmt: skip
        return values

    def _finite(self, loss: torch.Tensor, what: str) -> float:
        value = float(loss.detach())
        if not math.isfinite(value):
            from hwnas.training.trainer import TrainingDiverged

            raise TrainingDiverged(
                f"supernet {what} loss became {value} in epoch {self.epoch + 1}; lower the "
                "learning rate (--lr) or theta_lr"
            )
        return value

    # -- results ----------------------------------------------------------------------------
    def probabilities(self, head: int) -> list[np.ndarray]:
        """softmax(theta) of every layer of ``head``: the learned distribution."""
        return [torch.softmax(t.detach().cpu().double(), 0).numpy() for t in self.theta[head]]

    def argmax(self, head: int) -> list[int]:
        return [int(np.argmax(p)) for p in self.probabilities(head)]

    def head_summaries(self) -> list[dict[str, Any]]:
        options = self.task.space.options()  # type: ignore[attr-defined]
        out = []
        for h, objective in enumerate(self.heads):
            probs = self.probabilities(h)
            weights = [torch.from_numpy(p) for p in probs]
            expected = float(self.costs.normalised(weights))
            entropy = float(sum(-(p * np.log(np.clip(p, 1e-12, None))).sum() for p in probs))
            out.append(
                {
                    "head": h,
                    "tradeoff": objective.tradeoff,
                    "expected_cost": expected,
                    "argmax_costs": self.costs.describe(self.argmax(h)),
                    "entropy": entropy,
                    "collapse": collapse_stats(options, self.argmax(h)).to_json(),
                }
            )
        return out

    def extract(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The stand-alone network's weights for ``genotype`` (the supernet's ``extract``)."""
        return self.model.extract(genotype)  # type: ignore[operator]
