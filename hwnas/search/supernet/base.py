"""The supernet strategy's machinery (FBNet, SqueezeNAS, DARTS, SNAS, ENAS): one supernet, a front.

On the first :meth:`ask` the strategy trains the supernet itself (with the run's dataset,
training settings and device, see :class:`SupernetTrainer`), checkpointing under
``run_dir/strategy/supernet/`` so a killed search resumes from its last epoch. One theta head
per trade-off value (FBNet's beta, SqueezeNAS's target, DARTS's / SNAS's lambda) shares the
supernet. Afterwards each head yields its most likely architecture and samples of its learned
distribution; the runner evaluates them like any candidate, trained from scratch
(``finetune=false``, the default, as DARTS, FBNet and ENAS retrain what they derive: the
supernet only chooses, so its in-run ranking is graded against stand-alone training) or
fine-tuned from the supernet's weights (``finetune=true``: the weights are cut out to
``run_dir/strategy/weights/<digest>.safetensors`` and the candidate carries a ``supernet``
transfer pointing there).

The supernet trains one sampled path per weight step (``paths=one``, GDAS / single-path) and
one head per theta step in turn (``theta_heads=rotate``) by default: that keeps the supernet's
training within about twice the training of one network (docs/benchmarks.md), and since the
candidates train from scratch its weights only need to rank, not to be handed on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import hwnas.rundir as rundir
from hwnas.errors import ConfigError, DeviceError
from hwnas.objectives.base import Constraint, Objective
from hwnas.search.base import Strategy
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Trial

if TYPE_CHECKING:
    import torch

    from hwnas.search.supernet.costs import CostSet, CostTerm
    from hwnas.search.supernet.losses import HeadLoss
    from hwnas.search.supernet.tasks import SupernetTask
    from hwnas.search.supernet.trainer import SupernetTrainer


#: Where the strategy keeps its files, relative to the run directory.
STRATEGY_DIR = rundir.STRATEGY


TRANSFER_KIND = "supernet"


def _whole(name: str, value: Any, *, low: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def _number(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(value)


def _numbers(name: str, values: Any) -> list[float]:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(
            f"{name} must be a non-empty list of numbers, e.g. [0, 0.5, 1], got {values!r}"
        )
    return [_number(name, v) for v in values]


def _trained_accuracy(trial: Trial) -> float | None:
    """The trial's accuracy (%), from ``accuracy`` or ``error``; None when it has neither."""
    measurements = trial.measurements or {}
    if "accuracy" in measurements:
        return float(measurements["accuracy"].value)
    if "error" in measurements:
        return 100.0 - float(measurements["error"].value)
    return None


def search_seconds(cost_seconds: float, train_seconds: float, derive_started: float) -> dict:
    """The supernet search's time, without loading the run's data: its cost terms (a latency
    measured per operation, a lookup table), the training (all sessions' epochs) and the
    hand-off (pool, one-shot scoring) since ``derive_started`` (a ``perf_counter`` time)."""
    derive = time.perf_counter() - derive_started
    return {
        "derive_seconds": round(derive, 3),
        "search_seconds": round(cost_seconds + train_seconds + derive, 3),
    }


def oneshot_accuracy(trial: Trial) -> float | None:
    """The one-shot accuracy (%) the supernet gave the trial's candidate, if it came from one
    (``oneshot_accuracy``; ENAS's candidates carry ``one_shot_accuracy``)."""
    info = trial.candidate.info or {}
    value = info.get("oneshot_accuracy", info.get("one_shot_accuracy"))
    return None if value is None else float(value)


class SupernetStrategy(Strategy):
    """The shared machinery; subclasses choose the relaxation and the architecture loss."""

    name: ClassVar[str] = "supernet"
    batch_size: ClassVar[int] = 64
    relaxation: ClassVar[str] = "gumbel"

    def __init__(
        self,
        *,
        space: SearchSpace,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        seed: int = 0,
        epochs: int | None = None,
        warmup_epochs: int | None = None,
        temperature: float = 5.0,
        temperature_decay: float = 0.956,
        theta_lr: float = 0.01,
        paths: str = "one",
        cost: str | Sequence[str] | None = None,
        cost_weights: Mapping[str, float] | None = None,
        samples_per_head: int = 2,
        pool_per_head: int = 4,
        theta_heads: str = "rotate",
        finetune: bool = False,
        build_lut: bool = True,
        handoff: str = "bands",
    ) -> None:
        super().__init__(space=space, objectives=objectives, constraints=constraints, seed=seed)
        self.epochs = _whole("epochs", epochs, low=1, optional=True)
        self.warmup_epochs = _whole("warmup_epochs", warmup_epochs, low=0, optional=True)
        self.temperature = _number("temperature", temperature, positive=True)
        self.temperature_decay = _number("temperature_decay", temperature_decay, positive=True)
        self.theta_lr = _number("theta_lr", theta_lr, positive=True)
        from hwnas.search.supernet.relax import PATHS

        if paths not in PATHS:
            raise ValueError(f"paths must be one of {', '.join(PATHS)}, got {paths!r}")
        self.paths = paths
        self.cost = self._cost_metrics(cost)
        if cost_weights is not None and not isinstance(cost_weights, Mapping):
            raise ValueError(
                'cost_weights must map costs to weights, e.g. {"latency": 2}, got '
                f"{cost_weights!r}"
            )
        self.cost_weights = dict(cost_weights or {})
        self.samples_per_head = _whole("samples_per_head", samples_per_head, low=1)
        if theta_heads not in ("all", "rotate"):
            raise ValueError(
                f"theta_heads must be all (every head per theta step) or rotate (one head per "
                f"step, in turn), got {theta_heads!r}"
            )
        self.theta_heads = theta_heads
        self.pool_per_head = max(
            self.samples_per_head, _whole("pool_per_head", pool_per_head, low=1) or 1
        )
        if not isinstance(finetune, bool) or not isinstance(build_lut, bool):
            raise ValueError("finetune and build_lut must be true or false")
        self.finetune = finetune
        self.build_lut = build_lut
        from hwnas.search.supernet.handoff import HANDOFFS

        if handoff not in HANDOFFS:
            raise ValueError(
                f"handoff must be bands (one candidate per cost band) or pareto (the heads' "
                f"arg-maxes, then the predicted front), got {handoff!r}"
            )
        self.handoff = handoff
        self._queue: list[Candidate] | None = None
        self._ranked: dict[str, tuple[float, float]] = {}
        self.robust, self.robust_epsilon = "none", 0.3  # a collapse remedy (darts, snas)
        self.robust_beta = 1.0  # robust=darts-minus
        self.es_window, self.es_ratio = 2, 0.75  # robust=hessian-es
        self.trainer: SupernetTrainer | None = None
        self._cost_seconds = 0.0

    def _cost_metrics(self, cost: str | Sequence[str] | None) -> list[str] | None:
        from hwnas.search.supernet.costs import COST_METRICS

        if cost is None:
            return None
        metrics = [cost] if isinstance(cost, str) else list(cost)
        unknown = [m for m in metrics if m not in COST_METRICS]
        if unknown or not metrics:
            raise ValueError(f"cost must be one or more of {', '.join(COST_METRICS)}, got {cost!r}")
        return metrics

    def check_space(self) -> None:
        from hwnas.spaces.mobilenet import MobileNetSpace
        from hwnas.spaces.nb201 import NB201Space

        if not isinstance(self.space, (MobileNetSpace, NB201Space)):
            raise ConfigError(
                f"strategy '{self.name}' trains a supernet and needs --space mobilenet or "
                f"nb201, not '{self.space.name}'"
            )

    # -- the trade-offs (subclasses) --------------------------------------------------------
    def make_heads(self, costs: CostSet) -> list[HeadLoss]:
        raise NotImplementedError

    # -- ask / tell -------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        if self._queue is None:
            self._queue = self._search()
        out: list[Candidate] = []
        while self._queue and len(out) < n:
            candidate = self._queue.pop(0)
            if candidate.key() not in self.known:
                out.append(candidate)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        """The front comes from the supernet; results only grade its ranking: Kendall tau of
        the candidates' one-shot accuracy against their trained accuracy (event
        ``supernet_ranking``, updated as results come in; the last one is the run's, shown by
        ``hwnas search``, ``hwnas front`` and the report)."""
        from hwnas.objectives.ranking import RANKING_EVENT, ranking_summary

        added = False
        for trial in trials:
            oneshot = oneshot_accuracy(trial)
            trained = _trained_accuracy(trial)
            if oneshot is not None and trained is not None:
                self._ranked[trial.genotype.key()] = (oneshot, trained)
                added = True
        if added and len(self._ranked) >= 3:
            oneshot, trained = zip(*self._ranked.values())
            self.log_event(
                RANKING_EVENT,
                **ranking_summary(oneshot, trained),
                basis="fine-tuned from the supernet" if self.finetune else "trained alone",
            )

    def state_dict(self) -> dict[str, Any]:
        queue = None if self._queue is None else [c.to_json() for c in self._queue]
        ranked = {k: list(v) for k, v in self._ranked.items()}
        return {**super().state_dict(), "queue": queue, "ranked": ranked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        queue = state.get("queue")
        self._queue = None if queue is None else [Candidate.from_json(c) for c in queue]
        self._ranked = {k: (float(a), float(b)) for k, (a, b) in state.get("ranked", {}).items()}

    # -- the search -------------------------------------------------------------------------
    def _search(self) -> list[Candidate]:
        from hwnas.search.supernet.trainer import SupernetTrainer

        if self.resources.checkpoint_dir is None:
            raise ConfigError(
                f"strategy '{self.name}' trains its own supernet and needs a run: use "
                "hwnas.run_search(...) or `hwnas search` with --dataset"
            )
        self.check_space()
        task, device, train_settings = self._task()
        started = time.perf_counter()
        costs = self._costs(task)
        self._cost_seconds = time.perf_counter() - started  # a measured latency term, a table
        heads = self.make_heads(costs)
        settings = self._settings(train_settings)
        self.trainer = SupernetTrainer(
            task=task,
            costs=costs,
            heads=heads,
            settings=settings,
            device=device,
            checkpoint_dir=self._dir() / "supernet",
            log=self.log_event,
        )
        if self.trainer.epoch:
            self.log_event("supernet_resumed", epoch=self.trainer.epoch)
        self.trainer.train()
        return self._derive(self.trainer, costs)

    def _dir(self) -> Path:
        assert self.resources.checkpoint_dir is not None
        # Created here, and refused when a planted symlink would lead out of the run.
        checkpoints = Path(self.resources.checkpoint_dir)
        with rundir.open_dir(checkpoints.parent, f"{checkpoints.name}/supernet"):
            pass
        return checkpoints

    def _task(self) -> tuple[SupernetTask, Any, Any]:
        """The task, its training device and training settings, from the run's providers."""
        from hwnas.search.supernet.tasks import ClassificationTask
        from hwnas.spaces.nb201 import NB201Space

        task_class: type[ClassificationTask] = ClassificationTask
        if isinstance(self.space, NB201Space):
            from hwnas.search.supernet.cells import CellClassificationTask

            task_class = CellClassificationTask
        provider: Any = self.resources.training
        make = getattr(provider, "supernet_task", None)
        if callable(make):
            return make(self.space), provider.device, provider.settings
        from hwnas.training.provider import TrainingProvider

        if isinstance(provider, TrainingProvider):
            task = task_class.from_provider(provider, self.space)
            return task, provider.device, provider.settings
        raise ConfigError(
            f"strategy '{self.name}' trains a supernet and needs a dataset (--dataset digits); "
            "it cannot search a benchmark table"
        )

    def _settings(self, train: Any) -> Any:
        from hwnas.search.supernet.trainer import SupernetSettings

        epochs = self.epochs if self.epochs is not None else max(1, math.ceil(train.epochs))
        warmup = self.warmup_epochs
        if warmup is None:
            warmup = min(epochs - 1, round(0.2 * epochs))  # FBNet warms up on ~10-20%
        return SupernetSettings(
            epochs=epochs,
            warmup_epochs=warmup,
            temperature=self.temperature,
            temperature_decay=self.temperature_decay,
            relaxation=self.relaxation,
            paths=self.paths,
            theta_lr=self.theta_lr,
            optimizer=train.optimizer,
            lr=train.peak_lr,
            momentum=train.momentum,
            weight_decay=train.decay,
            grad_clip=train.grad_clip if train.grad_clip is not None else 5.0,
            seed=self.seed,
            robust=self.robust,
            robust_epsilon=self.robust_epsilon,
            robust_beta=self.robust_beta,
            theta_heads=self.theta_heads,
            es_window=self.es_window,
            es_ratio=self.es_ratio,
        )

    def _costs(self, task: SupernetTask) -> CostSet:
        from hwnas.search.supernet.costs import COST_METRICS, CostSet

        metrics = self.cost
        if metrics is None:
            metrics = [o.metric for o in self.objectives if o.metric in COST_METRICS]
        if not metrics:
            metrics = ["latency"] if self._device_provider() is not None else ["macs"]
        unknown = sorted(set(self.cost_weights) - set(metrics))
        if unknown:
            raise ConfigError(
                f"cost_weights names {', '.join(unknown)}, which the search does not trade; "
                f"its costs: {', '.join(metrics)}"
            )
        terms: list[CostTerm] = []
        counted = self._counted_terms(task, [m for m in metrics if m != "latency"])
        for metric in metrics:
            if metric == "latency":
                terms.append(self._latency_term(task))
            else:
                terms.extend(t for t in counted if t.metric == metric)
        weights = [float(self.cost_weights.get(t.metric, 1.0)) for t in terms]
        return CostSet(terms, weights)

    def _counted_terms(self, task: SupernetTask, metrics: list[str]) -> list[CostTerm]:
        from hwnas.search.supernet.costs import counted_terms
        from hwnas.spaces.nb201 import NB201Space

        if isinstance(self.space, NB201Space):
            from hwnas.search.supernet.cells import cell_counted_terms

            return cell_counted_terms(self.space, metrics, num_classes=task.num_classes,
                                      input_shape=task.input_shape)  # fmt: skip
        return counted_terms(task, metrics)

    def _device_provider(self) -> Any:
        return self.resources.device

    def _latency_term(self, task: SupernetTask) -> CostTerm:
        from hwnas.profilers.lut import LatencyTable, table_path
        from hwnas.profilers.provider import cached_table
        from hwnas.search.supernet.costs import latency_term
        from hwnas.search.supernet.tasks import ClassificationTask

        device = self._device_provider()
        if device is None:
            raise ConfigError(
                f"strategy '{self.name}' with cost latency needs a target device with a latency "
                "table (--device cpu); or trade cost=macs"
            )
        if not isinstance(task, ClassificationTask):
            raise ConfigError(
                "latency tables time the classifier head; a segmentation search trades "
                "cost=macs, params or peak_memory"
            )
        lookup = {"num_classes": device.num_classes, "input_shape": device.input_shape}
        from hwnas.spaces.nb201 import NB201Space

        if isinstance(self.space, NB201Space):
            from hwnas.search.supernet.cells import cell_latency_term

            term, measured = cell_latency_term(self.space, device.profile, **lookup,
                                               seed=self.seed)  # fmt: skip
            self.log_event("cell_latency_measured", **measured)
            return term
        try:
            table = cached_table(device.profile, self.space, **lookup)
        except DeviceError:
            if not self.build_lut:
                raise
            table = LatencyTable.build(
                self.space, device.profile, **lookup, seed=self.seed, calibrate=16
            )
            path = table.save(table_path(device.profile, self.space, **lookup))
            self.log_event("lut_built", path=str(path), entries=len(table.entries),
                           seconds=table.meta.get("build_seconds"))  # fmt: skip
        return latency_term(table)

    # -- the front --------------------------------------------------------------------------
    def _derive(self, trainer: SupernetTrainer, costs: CostSet) -> list[Candidate]:
        """A pool of proposals, of which ``heads x samples_per_head`` are handed off: one per
        cost band (``handoff=bands``) or the heads' arg-maxes, then the predicted front's most
        spread-out members (``pareto``); see :mod:`hwnas.search.supernet.handoff`."""
        import numpy as np

        from hwnas.search.supernet.handoff import Pool, band_of, band_picks, handoff_order
        from hwnas.search.supernet.ranking import oneshot_accuracies

        started = time.perf_counter()
        n = len(trainer.heads) * self.samples_per_head
        heads = [trainer.probabilities(h) for h in range(len(trainer.heads))]
        tradeoffs = [head.tradeoff for head in trainer.heads]
        pool = Pool(self.space, costs, seen=set(self.known))
        for h, probs in enumerate(heads):
            pool.add(trainer.argmax(h), probs, {"head": h, "tradeoff": tradeoffs[h],
                                                "draw": "argmax"})  # fmt: skip
        if self.handoff == "bands":
            per_band = max(1, math.ceil(len(heads) * self.pool_per_head / n))
            pool.draw_bands(heads, tradeoffs, n, per_band, self.rng, at_least=n)
        else:
            pool.draw_heads(heads, tradeoffs, self.pool_per_head, self.rng)
        members = pool.members
        # One-shot accuracy (the path with the shared weights): ranks the pool with the
        # predicted costs, and is graded against the trained accuracy in tell().
        scores = oneshot_accuracies(trainer, [g for g, _ in members], seed=self.seed)
        F = np.array(
            [[-s, *info["predicted"].values()] for (_, info), s in zip(members, scores)],
            dtype=float,
        ).reshape(len(members), -1)
        if self.handoff == "bands":
            bands = [band_of(info["cost_fraction"], n) for _, info in members]
            order = band_picks(bands, scores, n, n, F)
        else:  # every head's arg-max (its trade-off's answer) first, then the spread-out rest
            argmaxes = [i for i, (_, info) in enumerate(members) if info["draw"] == "argmax"]
            order = (argmaxes + [i for i in handoff_order(F) if i not in argmaxes])[:n]
        candidates = [
            self._candidate(trainer, members[i][0],
                            {**members[i][1], "oneshot_accuracy": round(scores[i], 4)})
            for i in order
        ]  # fmt: skip
        self.log_event(
            "supernet_front",
            candidates=[{"genotype": c.genotype.spec, **c.info} for c in candidates],
            pool=len(members),
            handoff=self.handoff,
            train_seconds=round(trainer.train_seconds, 3),
            **search_seconds(self._cost_seconds, trainer.train_seconds, started),
        )
        return candidates

    def _candidate(
        self, trainer: SupernetTrainer, genotype: Genotype, info: dict[str, Any]
    ) -> Candidate:
        if not self.finetune:
            return Candidate(genotype, info=info)
        from hwnas.training.weights import save_weights

        relative = f"{STRATEGY_DIR}/weights/{genotype.digest()}.safetensors"
        assert self.resources.checkpoint_dir is not None
        state: dict[str, torch.Tensor] = trainer.extract(genotype)
        save_weights(
            Path(self.resources.checkpoint_dir) / "weights" / f"{genotype.digest()}.safetensors",
            state,
            {"genotype": genotype.to_json(), "source": "supernet", "epochs": trainer.epoch},
            root=Path(self.resources.checkpoint_dir).parent,
        )
        return Candidate(genotype, transfer={"kind": TRANSFER_KIND, "weights": relative}, info=info)
