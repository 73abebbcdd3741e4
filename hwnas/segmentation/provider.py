"""SegmentationProvider: mIoU, training time, MACs and parameters of a segmentation network.

It is also the supernet strategies' source of the task (:meth:`supernet_task`), the way the
TrainingProvider is for classification. A candidate with a ``supernet`` transfer starts from
the weights cut out of the supernet (a file inside the run directory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from hwnas.errors import ConfigError
from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.segmentation import DATASET_PREFIX
from hwnas.segmentation.data import SegmentationData
from hwnas.segmentation.task import SegmentationTask, evaluate_miou, train_segmentation
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.training.settings import TrainSettings
from hwnas.types import Candidate, Genotype, Measurement

__all__ = ["SegmentationProvider"]


class SegmentationProvider(MetricProvider):
    cheap = False
    role = "training"

    @classmethod
    def from_config(cls, config: Any, space: Any) -> SegmentationProvider:
        """The provider for ``--dataset segmentation:NAME`` with the run's training settings."""
        from hwnas.segmentation.data import load_segmentation

        if not isinstance(space, MobileNetSpace):
            raise ConfigError(
                f"segmentation searches use the mobilenet space as the encoder, not '{space.name}'"
            )
        name = config.dataset[len(DATASET_PREFIX) :]
        training = dict(config.training)
        train_device = str(training.pop("train_device", "auto"))
        resolution = int(training.pop("resolution", 32))
        data = load_segmentation(
            name, data_dir=config.data_dir, resolution=resolution, seed=config.seed
        )
        return cls(
            space=space,
            data=data,
            settings=TrainSettings.from_options(training),
            train_device=train_device,
            seed=config.seed,
        )

    def __init__(
        self,
        *,
        space: MobileNetSpace,
        data: SegmentationData,
        settings: TrainSettings,
        train_device: str = "auto",
        seed: int = 0,
    ) -> None:
        from hwnas.training.trainer import resolve_device

        self.space = space
        self.data = data
        self.settings = settings
        self.device = resolve_device(train_device)
        self.resource = str(self.device)
        self.seed = seed
        self.num_classes = data.num_classes
        self.input_shape = data.input_shape

    def units(self) -> Mapping[str, str]:
        return {"miou": "%", "error": "%", "train_time": "s", "macs": "MAC", "params": "count"}

    def supernet_task(self, space: MobileNetSpace) -> SegmentationTask:
        return SegmentationTask(space=space, data=self.data, settings=self.settings)

    def build(self, genotype: Genotype, *, seed: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.supernet_task(self.space).build(genotype)

    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        from hwnas.profilers.cheap import count_macs, count_params
        from hwnas.training.weights import save_weights

        genotype = candidate.genotype
        model = self.build(genotype, seed=ctx.seed)
        transfer = dict(candidate.transfer or {})
        if transfer.get("weights"):
            self._load_transfer(model, genotype, transfer, ctx)
        task = self.supernet_task(self.space)
        epochs = float(candidate.fidelity or self.settings.epochs)
        seconds = train_segmentation(model, task, epochs=epochs, device=self.device, seed=ctx.seed)
        score, per_class = evaluate_miou(model, self.data, "val", device=self.device)
        save_weights(
            ctx.weights_path(),
            model.state_dict(),
            {"genotype": genotype.to_json(), "trial": ctx.trial, "epochs": epochs,
             "task": "segmentation", "dataset": self.data.name,
             "num_classes": self.num_classes, "input_shape": list(self.input_shape)},
            root=ctx.run_dir,
        )  # fmt: skip
        env = {"dataset": self.data.name, "split": "val", "epochs": epochs, "seed": ctx.seed,
               "per_class_iou": per_class, "transfer": transfer.get("kind")}  # fmt: skip
        values = {
            "miou": Measurement("miou", score, "%", env=env),
            "error": Measurement("error", 100.0 - score, "%", env=env),
            "train_time": Measurement("train_time", seconds, "s", device=str(self.device)),
        }
        if "macs" in metrics:
            values["macs"] = Measurement("macs", float(count_macs(model, self.input_shape)), "MAC")
        if "params" in metrics:
            values["params"] = Measurement("params", float(count_params(model)), "count")
        return {m: values[m] for m in metrics}

    def _load_transfer(
        self, model: torch.nn.Module, genotype: Genotype, transfer: dict[str, Any], ctx: EvalContext
    ) -> None:
        from hwnas.training.inherit import inherit
        from hwnas.training.weights import load_weights

        root = Path(ctx.run_dir).resolve()
        path = (root / str(transfer["weights"])).resolve()
        if Path(str(transfer["weights"])).is_absolute() or not path.is_relative_to(root):
            raise ConfigError(f"transfer weights '{transfer['weights']}' must lie inside {root}")
        state, meta = load_weights(path)
        parent = Genotype.from_json(meta["genotype"]) if "genotype" in meta else None
        inherit(model, state, transfer=transfer, parent_genotype=parent,
                child_genotype=genotype, space=self.space)  # fmt: skip
