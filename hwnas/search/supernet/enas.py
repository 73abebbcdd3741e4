"""ENAS (Pham et al. 2018), multi-objective: an LSTM controller picks paths of shared weights.

On the first :meth:`ask` the strategy trains the shared-weight network of the space
(``mobilenet``: :class:`~hwnas.search.supernet.network.Supernet`; ``nb201``:
:class:`~hwnas.search.supernet.cell.CellSupernet`) and the controller alternately
(:class:`~hwnas.search.supernet.enas_trainer.ENASTrainer`). The reward of a sampled architecture is
its accuracy on a validation batch with the shared weights combined with its hardware costs
by the reward engine under a preference vector the controller is conditioned on, so one
controller learns the whole trade-off. Hardware costs come from the run's training-free
sources (latency table or predictor, MACs, parameters); a cost the run only measures (latency
measured on the device, training time) enters the reward as its MACs (event ``enas_proxy``).

At the end, the controller proposes, under every preference vector, its greedy architecture
and ``samples_per_preference`` samples; each is scored with the shared weights on
``eval_batches`` validation batches, and ``candidates`` of them are chosen, for each preference
vector in turn the best remaining one by the reward engine (new cost values first), so they
spread along the trade-off. They become the candidates, trained from scratch as ENAS retrains
its derived networks (``finetune=false``, the default) or fine-tuned from their cut of the
shared weights (``finetune=true``), exactly as the other supernet strategies hand off
(:class:`SupernetStrategy`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.objectives.base import Constraint, Objective
from hwnas.objectives.pareto import pareto_ranks
from hwnas.search.rl.reward import REWARDS, RewardEngine, default_preferences, is_quality
from hwnas.search.supernet.base import SupernetStrategy, _number, _whole, search_seconds
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype

__all__ = ["ENASSearch"]

#: Quality metrics a one-shot score can stand for: value from the accuracy in percent.
_ONE_SHOT = {"accuracy": lambda acc: acc, "error": lambda acc: 100.0 - acc}


class ENASSearch(SupernetStrategy):
    """ENAS with a preference-conditioned controller (see the module docstring)."""

    name = "enas"

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        seed: int = 0,
        epochs: int | None = None,
        warmup_epochs: int | None = None,
        controller_steps: int = 10,
        rollouts: int = 8,
        controller_lr: float = 0.0035,
        hidden: int = 32,
        entropy_coef: float = 0.01,
        baseline_decay: float = 0.9,
        update: str = "reinforce",
        ppo_clip: float = 0.2,
        ppo_epochs: int = 4,
        reward: str = "tchebycheff",
        mnasnet_beta: float = 0.07,
        candidates: int = 10,
        samples_per_preference: int = 2,
        eval_batches: int = 2,
        finetune: bool = False,
    ) -> None:
        super().__init__(
            space=space, objectives=objectives, constraints=constraints, seed=seed,
            epochs=epochs, warmup_epochs=warmup_epochs, finetune=finetune,
        )  # fmt: skip
        from hwnas.search.rl.ppo import PolicyUpdate
        from hwnas.search.supernet.enas_trainer import ENASSettings

        self.enas = ENASSettings(
            controller_steps=_whole("controller_steps", controller_steps, low=1),  # type: ignore[arg-type]
            rollouts=_whole("rollouts", rollouts, low=2),  # type: ignore[arg-type]
        )
        self.controller_lr = _number("controller_lr", controller_lr, positive=True)
        self.hidden = _whole("hidden", hidden, low=1)
        self.baseline_decay = _number("baseline_decay", baseline_decay)
        if not 0 <= self.baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        self.update = PolicyUpdate(
            kind=update, clip=ppo_clip, epochs=ppo_epochs,
            entropy_coef=_number("entropy_coef", entropy_coef),
        )  # fmt: skip
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        self.reward = reward
        self.mnasnet_beta = _number("mnasnet_beta", mnasnet_beta, positive=True)
        self.candidates = _whole("candidates", candidates, low=1)
        self.samples_per_preference = _whole("samples_per_preference", samples_per_preference,
                                             low=0)  # fmt: skip
        self.eval_batches = _whole("eval_batches", eval_batches, low=1)
        self._values: dict[str, dict[str, float]] = {}
        self._proxy: dict[str, bool] = {}

    def check_space(self) -> None:
        from hwnas.spaces.mobilenet import MobileNetSpace
        from hwnas.spaces.nb201 import NB201Space

        if not isinstance(self.space, (MobileNetSpace, NB201Space)):
            raise ConfigError(
                f"strategy 'enas' shares weights of the mobilenet or nb201 space; "
                f"use --space mobilenet or --space nb201, not '{self.space.name}'"
            )

    # -- the run ----------------------------------------------------------------------------
    def _task(self) -> tuple[Any, Any, Any]:
        """The classification task, its training device and settings, from the run."""
        from hwnas.search.supernet.tasks import ClassificationTask
        from hwnas.training.provider import TrainingProvider

        provider = self.resources.training
        if isinstance(provider, TrainingProvider):
            task = ClassificationTask.from_provider(provider, self.space)  # type: ignore[arg-type]
            return task, provider.device, provider.settings
        raise ConfigError(
            "strategy 'enas' trains shared weights and needs a dataset (--dataset digits); "
            "it cannot search a benchmark table"
        )

    def _sources(self) -> dict[str, str]:
        """How each reward metric is obtained: 'one_shot', 'cheap', or 'macs' (a proxy for
        a metric the run only measures)."""
        metrics = [o.metric for o in self.objectives] + [c.metric for c in self.constraints]
        out: dict[str, str] = {}
        for metric in dict.fromkeys(metrics):
            objective = next((o for o in self.objectives if o.metric == metric), None)
            if metric in _ONE_SHOT:
                out[metric] = "one_shot"
                continue
            if objective is not None and is_quality(objective):
                raise ConfigError(
                    f"strategy 'enas' scores architectures by one-shot accuracy and cannot "
                    f"estimate '{metric}'; use --objective error or accuracy"
                )
            cheap = self.cheap is not None and metric in self.cheap.units()
            # Cheap unless the run itself measures it (latency timed on the device ...).
            out[metric] = "cheap" if cheap and metric not in self.resources.measured else "macs"
        proxied = [m for m, s in out.items() if s == "macs"]
        if proxied:
            if self.cheap is None or "macs" not in self.cheap.units():
                raise ConfigError(
                    f"strategy 'enas' needs a training-free value of {', '.join(proxied)} for "
                    "its reward: use --latency lut, or objectives params / macs"
                )
            self.log_event("enas_proxy", metrics=proxied, proxy="macs")
        return out

    def _metric_values(self, genotype: Genotype, names: Sequence[str]) -> dict[str, float]:
        key = genotype.key()
        if key not in self._values:
            assert self.cheap is not None
            self._values[key] = self.cheap(genotype, list(names))
        return self._values[key]

    def _scorer(self, sources: dict[str, str]) -> Any:
        """``score(archs, accuracy) -> (rows, violation)`` for the trainer."""
        engine_rows = [o.metric for o in self.objectives]
        cheap_names = sorted({("macs" if s == "macs" else m) for m, s in sources.items()
                              if s != "one_shot"})  # fmt: skip

        def value(metric: str, genotype: Genotype, accuracy: float) -> float:
            source = sources[metric]
            if source == "one_shot":
                return float(_ONE_SHOT[metric](accuracy))
            values = self._metric_values(genotype, cheap_names)
            return float(values["macs" if source == "macs" else metric])

        def score(archs: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            raw: dict[str, list[float]] = {m: [] for m in sources}
            for arch, acc in zip(archs, accuracy):
                genotype = self.space.from_indices([int(j) for j in arch])  # type: ignore[attr-defined]
                for metric in sources:
                    raw[metric].append(value(metric, genotype, float(acc)))
            signs = np.array([o.sign for o in self.objectives])
            rows = np.array([raw[m] for m in engine_rows], dtype=float).T * signs
            violation = self._engine.violation({m: np.array(v) for m, v in raw.items()},
                                               len(archs))  # fmt: skip
            return rows, violation

        return score

    def _search(self) -> list[Candidate]:
        from hwnas.search.rl.lstm import LSTMController
        from hwnas.search.supernet.enas_trainer import ENASTrainer

        if self.resources.checkpoint_dir is None:
            raise ConfigError(
                "strategy 'enas' trains its own shared weights and needs a run: use "
                "hwnas.api.search(...) or `hwnas search` with --dataset"
            )
        self.check_space()
        task, device, train_settings = self._task()
        sources = self._sources()
        self._proxy = {m: s == "macs" for m, s in sources.items()}
        self._engine = RewardEngine(
            kind=self.reward, objectives=self.objectives, constraints=self.constraints,
            mnasnet_beta=self.mnasnet_beta,
        )  # fmt: skip
        prefs = default_preferences(len(self.objectives))
        controller = LSTMController(
            cards=[len(o) for o in self.space.options()],  # type: ignore[attr-defined]
            objectives=len(self.objectives), hidden=self.hidden, lr=self.controller_lr,
            seed=self.seed, update=self.update,
        )  # fmt: skip
        describe = {
            "controller": [self.hidden, self.controller_lr, self.baseline_decay],
            "update": [self.update.kind, self.update.clip, self.update.epochs,
                       self.update.entropy_coef],
            "reward": [self.reward, self.mnasnet_beta, sources],
            "objectives": [o.metric for o in self.objectives],
        }  # fmt: skip
        trainer = ENASTrainer(
            task=task, space=self.space, controller=controller, engine=self._engine,
            preferences=prefs, score=self._scorer(sources), settings=self._settings(train_settings),
            enas=self.enas, baseline_decay=self.baseline_decay, device=device,
            checkpoint_dir=self._dir() / "supernet", log=self.log_event, describe=describe,
        )  # fmt: skip
        self.trainer = trainer  # type: ignore[assignment]
        if trainer.epoch:
            self.log_event("supernet_resumed", epoch=trainer.epoch)
        trainer.train()
        return self._front(trainer, prefs)

    def _front(self, trainer: Any, prefs: np.ndarray) -> list[Candidate]:
        """The controller's greedy and sampled architectures under every preference, the
        best ``candidates`` of them by Pareto rank of their one-shot scores."""
        import torch

        started = time.perf_counter()
        draws = torch.Generator().manual_seed(self.seed * 7919 + 1)
        pool: list[tuple[list[int], str, int]] = []
        seen = set(self.known)
        greedy = trainer.controller.greedy(prefs)
        samples = [
            trainer.controller.sample(prefs, draws) for _ in range(self.samples_per_preference)
        ]
        for p in range(len(prefs)):
            for kind, rows in [("greedy", greedy), *[("sample", s) for s in samples]]:
                indices = [int(j) for j in rows[p]]
                key = self.space.from_indices(indices).key()  # type: ignore[attr-defined]
                if key not in seen:
                    seen.add(key)
                    pool.append((indices, kind, p))
        if not pool:
            return []
        batches = self.task_batches(trainer)
        archs = np.array([a for a, _, _ in pool])
        accuracy = trainer.accuracies(archs, batches)
        rows, violation = trainer.score(archs, accuracy)
        ranks = pareto_ranks(np.where(violation[:, None] > 0, np.inf, rows))
        order = self._spread(rows, violation, prefs)
        out = []
        for i in order:
            indices, kind, p = pool[int(i)]
            genotype = self.space.from_indices(indices)  # type: ignore[attr-defined]
            info = {
                "draw": kind,
                "preference": [round(float(w), 4) for w in prefs[p]],
                "pareto_rank": int(ranks[i]),
                # What the reward saw; a proxied metric appears under its proxy's name.
                "one_shot": {
                    ("macs" if self._proxy.get(o.metric) else o.metric): float(rows[i, k] * o.sign)
                    for k, o in enumerate(self.objectives)
                },
                "one_shot_accuracy": float(accuracy[i]),
            }
            out.append(self._candidate(trainer, genotype, info))
        self.log_event(
            "enas_front",
            pool=len(pool),
            candidates=[{"genotype": c.genotype.spec, **c.info} for c in out],
            train_seconds=round(trainer.train_seconds, 3),
            **search_seconds(0.0, trainer.train_seconds, started),
        )
        return out

    def _spread(self, rows: np.ndarray, violation: np.ndarray, prefs: np.ndarray) -> list[int]:
        """Up to ``candidates`` pool positions: in turn for each preference vector, the best
        remaining architecture by the reward engine on the pool's one-shot rows, preferring
        costs not yet chosen (equal costs add nothing to a front), so the candidates spread
        along the trade-off instead of crowding where the one-shot scores are noisiest."""
        engine = self._engine
        engine.set_reference(rows[violation == 0] if (violation == 0).any() else rows)
        costs = [tuple(r) for r in rows[:, self._cost_columns()]]
        chosen: list[int] = []
        taken: set[tuple[float, ...]] = set()
        while len(chosen) < min(self.candidates, len(rows)):
            before = len(chosen)
            for pref in prefs[_spread_order(prefs)]:
                if len(chosen) >= min(self.candidates, len(rows)):
                    break
                reward = engine(rows, np.repeat(pref[None], len(rows), 0), violation)
                reward[chosen] = -np.inf
                fresh = np.array([c not in taken for c in costs])
                if (fresh & np.isfinite(reward)).any():
                    reward = np.where(fresh, reward, -np.inf)
                if not np.isfinite(reward).any():
                    break
                best = int(np.argmax(reward))
                chosen.append(best)
                taken.add(costs[best])
            if len(chosen) == before:
                break
        return chosen

    def _cost_columns(self) -> list[int]:
        return [k for k, o in enumerate(self.objectives) if o.metric not in _ONE_SHOT]

    def task_batches(self, trainer: Any) -> list[Any]:
        """``eval_batches`` fixed validation batches of the architecture part."""
        stream = trainer.task.batches(
            trainer.arch_part, seed=self.seed * 100_003 + 99_991, device=trainer.device
        )
        count = min(self.eval_batches, trainer.task.steps(trainer.arch_part))
        return [next(stream) for _ in range(count)]


def _spread_order(prefs: np.ndarray) -> list[int]:
    """Preference vectors in farthest-point order from the most balanced one, so that the
    first few already span the trade-off."""
    order = [int(np.argmin(np.abs(prefs - prefs.mean(axis=0)).sum(axis=1)))]
    distance = np.abs(prefs - prefs[order[0]]).sum(axis=1)
    while len(order) < len(prefs):
        distance[order] = -1.0
        nxt = int(np.argmax(distance))
        order.append(nxt)
        distance = np.minimum(distance, np.abs(prefs - prefs[nxt]).sum(axis=1))
    return order
