"""TrainingProvider: error, accuracy and training time of a candidate, by training it.

Each evaluation builds the candidate's network (initialised with the run's seed), starts it
from its parent's weights when the candidate has a parent (see :mod:`hwnas.training.inherit`),
trains it for the candidate's fidelity in epochs (else the run's ``training.epochs``), saves
the weights to ``weights/trial-NNNNN.safetensors`` and reports validation error and accuracy
(%) and training time (s). The test split is never used here; :meth:`TrainingProvider.test`
evaluates saved weights on it for the final report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.types import Candidate, Genotype, Measurement

if TYPE_CHECKING:
    from torch import nn

    from hwnas.config import RunConfig
    from hwnas.spaces.base import SearchSpace
    from hwnas.training.datasets.splits import DatasetSplits
    from hwnas.training.inherit import InheritReport
    from hwnas.training.settings import TrainSettings


class TrainingProvider(MetricProvider):
    """Trains candidates on ``dataset`` (see :func:`~hwnas.training.datasets.load_dataset`).

    Construction is cheap but checks what a user can get wrong up front: the dataset's name
    and files (downloading them when missing and ``download``), the training device and the
    settings. The images are loaded on the first evaluation and kept.
    """

    cheap = False
    role = "training"

    def __init__(
        self,
        *,
        space: SearchSpace,
        dataset: str,
        settings: TrainSettings,
        data_dir: str | os.PathLike[str] | None = None,
        train_device: str = "auto",
        seed: int = 0,
        val_fraction: float | None = None,
        resolution: int | None = None,
        distill_temperature: float = 4.0,
        download: bool = True,
    ) -> None:
        from hwnas.training.datasets.catalog import dataset_info, ensure_available
        from hwnas.training.trainer import resolve_device

        self.space = space
        self.dataset = dataset
        self.settings = settings
        self.data_dir = data_dir
        self.device = resolve_device(train_device)
        self.seed = seed
        self.val_fraction = val_fraction
        self.resolution = resolution
        self.distill_temperature = distill_temperature
        info = dataset_info(dataset, resolution=resolution)
        self.num_classes = info.num_classes
        self.input_shape: tuple[int, int, int] = info.input_shape
        self.resource = str(self.device)
        ensure_available(dataset, data_dir=data_dir, download=download)
        self._data: DatasetSplits | None = None

    @classmethod
    def from_config(cls, config: RunConfig, space: SearchSpace) -> TrainingProvider:
        """The provider for ``config.dataset`` with the settings in ``config.training``."""
        from hwnas.errors import ConfigError
        from hwnas.training.datasets.catalog import IMAGEFOLDER
        from hwnas.training.settings import TrainSettings

        if not config.dataset:
            raise ConfigError("training needs a dataset (--dataset)")
        training = dict(config.training)
        settings = TrainSettings.from_options(training)
        resolution = training.get("resolution")
        if resolution is None and config.dataset.startswith(IMAGEFOLDER):
            resolution = space.input_shape[-1]  # a folder's images take the space's size
        return cls(
            space=space,
            dataset=config.dataset,
            settings=settings,
            data_dir=config.data_dir,
            train_device=str(training.get("train_device", "auto")),
            seed=config.seed,
            val_fraction=training.get("val_fraction"),
            resolution=resolution,
            distill_temperature=float(training.get("distill_temperature", 4.0)),
        )

    def units(self) -> Mapping[str, str]:
        return {"error": "%", "accuracy": "%", "train_time": "s"}

    @property
    def data(self) -> DatasetSplits:
        """The dataset's splits, loaded on first use."""
        if self._data is None:
            from hwnas.training.datasets.catalog import load_dataset

            self._data = load_dataset(
                self.dataset,
                data_dir=self.data_dir,
                seed=self.seed,
                val_fraction=self.val_fraction,
                resolution=self.resolution,
            )
        return self._data

    def build(self, genotype: Genotype, *, seed: int) -> nn.Module:
        """The candidate's network, initialised from ``seed`` (the global RNG is left alone)."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.space.build(
                genotype, num_classes=self.num_classes, in_channels=self.input_shape[0]
            )

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        from hwnas.training.trainer import train
        from hwnas.training.weights import save_weights

        data = self.data
        genotype = candidate.genotype
        model = self.build(genotype, seed=ctx.seed)
        report, before, teacher = None, {"epochs": 0.0, "train_time": 0.0}, None
        transfer = dict(candidate.transfer or {})
        if candidate.parent is not None or transfer.get("weights"):
            report, before, teacher = self._inherit(model, candidate, transfer, ctx)
        total_epochs = float(
            candidate.fidelity if candidate.fidelity is not None else self.settings.epochs
        )
        epochs = total_epochs - before["epochs"]
        if epochs <= 0:
            raise ValueError(
                f"candidate asks for {total_epochs:g} epochs but its parent (trial "
                f"{candidate.parent}) was already trained for {before['epochs']:g}"
            )
        result = train(
            model,
            data,
            self.settings.replace(epochs=epochs),
            device=self.device,
            seed=ctx.seed,
            teacher=teacher,
            distill_weight=_distill_weight(transfer.get("distill")),
            distill_temperature=self.distill_temperature,
        )
        train_time = before["train_time"] + result.train_time
        save_weights(
            ctx.weights_path(),
            result.state,
            {
                "genotype": genotype.to_json(),
                "trial": ctx.trial,
                "epochs": total_epochs,
                "train_time": train_time,
                "space_config": self.space.config(),
                "num_classes": self.num_classes,
                "in_channels": self.input_shape[0],
                **data.describe(),
            },
            root=ctx.run_dir,
        )
        env = {
            **result.env(),
            "dataset": self.dataset,
            "split": "val",
            "val_images": len(data.val),
            "seed": ctx.seed,
            "epochs": total_epochs,
            "epochs_this_trial": epochs,
            "optimizer": self.settings.optimizer,
            "lr": self.settings.peak_lr,
            "weight_decay": self.settings.decay,
            "label_smoothing": self.settings.label_smoothing,
            "data_fraction": self.settings.data_fraction,
            "parent": candidate.parent,
            "transfer": report.to_json() if report is not None else None,
        }
        values = {
            "error": Measurement("error", result.error, "%", env=env),
            "accuracy": Measurement("accuracy", result.accuracy, "%", env=env),
            # For "continue" this includes the parent's training: the cost of this network
            # at this fidelity, whichever way it was reached.
            "train_time": Measurement(
                "train_time",
                train_time,
                "s",
                device=result.device,
                stats={"this_trial": result.train_time, "eval_time": result.eval_time},
                env=env,
            ),
        }
        return {m: values[m] for m in metrics}

    def _inherit(
        self, model: nn.Module, candidate: Candidate, transfer: dict[str, Any], ctx: EvalContext
    ) -> tuple[InheritReport, dict[str, float], nn.Module | None]:
        from hwnas.training.inherit import inherit
        from hwnas.training.weights import load_weights

        if candidate.parent is None:
            # A strategy's own weights file (e.g. cut from a supernet), relative to the run.
            path = _run_file(ctx.run_dir, transfer["weights"])
        else:
            path = ctx.weights_path(candidate.parent)
        if not path.is_file() and candidate.parent is None:
            raise FileNotFoundError(f"transfer weights file {path} does not exist")
        if not path.is_file():
            raise FileNotFoundError(
                f"parent trial {candidate.parent} has no weights at {path}; a parent must "
                "complete (with training) before its children are evaluated"
            )
        state, meta = load_weights(path)
        parent_genotype = Genotype.from_json(meta["genotype"]) if "genotype" in meta else None
        report = inherit(
            model,
            state,
            transfer=transfer or None,
            parent_genotype=parent_genotype,
            child_genotype=candidate.genotype,
            space=self.space,
        )
        before = {"epochs": 0.0, "train_time": 0.0}
        if report.kind == "continue":
            before = {
                "epochs": float(meta.get("epochs", 0.0)),
                "train_time": float(meta.get("train_time", 0.0)),
            }
        teacher = None
        if transfer.get("distill") and parent_genotype is not None:
            # Knowledge distillation from the parent (LEMONADE's approximate morphisms).
            teacher = self.build(parent_genotype, seed=ctx.seed)
            teacher.load_state_dict(state)
        return report, before, teacher

    # -- the final report ------------------------------------------------------------------
    def test(self, weights: str | os.PathLike[str]) -> dict[str, Measurement]:
        """``test_error`` and ``test_accuracy`` (%) of saved weights on the held-out test split.

        For the final report only: the search never sees the test split.
        """
        from hwnas.training.trainer import evaluate_model
        from hwnas.training.weights import load_weights

        state, meta = load_weights(Path(weights))
        model = self.build(Genotype.from_json(meta["genotype"]), seed=0)
        model.load_state_dict(state)
        result = evaluate_model(model, self.data, "test", device=self.device)
        env = {"dataset": self.dataset, "split": "test", "test_images": result.images}
        return {
            "test_error": Measurement("test_error", result.error, "%", env=env),
            "test_accuracy": Measurement("test_accuracy", result.accuracy, "%", env=env),
        }


def _run_file(run_dir: Path, relative: Any) -> Path:
    """``run_dir / relative``; ConfigError unless it is a relative path inside the run."""
    from hwnas.errors import ConfigError

    root = Path(run_dir).resolve()
    path = (root / str(relative)).resolve()
    if Path(str(relative)).is_absolute() or not path.is_relative_to(root):
        raise ConfigError(
            f"transfer weights '{relative}' must be a path inside the run directory {root}"
        )
    return path


def _distill_weight(value: Any) -> float:
    """``transfer["distill"]``: a weight in [0, 1], or true for 0.5."""
    if value is None or value is False:
        return 0.5  # unused: no teacher
    return 0.5 if value is True else float(value)
