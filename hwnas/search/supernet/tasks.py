"""What a supernet is trained for: the head, the data, the loss.

A task gives the supernet trainer its two disjoint parts of the training data (weights on one,
architecture logits on the other, 80/20 as in FBNet), an endless stream of batches from each,
the loss, and the stand-alone network of a genotype (for costs and for extracted weights).
:class:`ClassificationTask` wraps a :class:`~hwnas.training.provider.TrainingProvider`'s
dataset; :class:`hwnas.segmentation.task.SegmentationTask` does the same for dense labels.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.types import Genotype

if TYPE_CHECKING:
    from hwnas.training.datasets.splits import DatasetSplits, Split
    from hwnas.training.settings import TrainSettings

__all__ = ["ClassificationTask", "SupernetTask"]

Batch = tuple[torch.Tensor, torch.Tensor]


class SupernetTask(abc.ABC):
    """The supernet trainer's view of a dataset and a network head."""

    #: Name of the accuracy-like metric the task's evaluations report.
    metric: str = "accuracy"
    #: Whether the output is resized to the input (dense prediction).
    upsample: bool = False

    space: MobileNetSpace
    in_channels: int
    input_shape: tuple[int, int, int]
    num_classes: int
    batch_size: int

    @abc.abstractmethod
    def make_head(self) -> nn.Module:
        """A freshly initialised head for the last layer's channels."""

    @abc.abstractmethod
    def build(self, genotype: Genotype) -> nn.Module:
        """The stand-alone network of ``genotype`` (same parameter names as the supernet's
        path, see :func:`hwnas.search.supernet.network.extract_state`)."""

    @abc.abstractmethod
    def search_parts(self, seed: int) -> tuple[Any, Any]:
        """Two disjoint parts of the training data: (for weights, for architecture logits)."""

    @abc.abstractmethod
    def batches(self, part: Any, *, seed: int, device: torch.device) -> Iterator[Batch]:
        """An endless stream of training batches of ``part`` on ``device``, seeded."""

    @abc.abstractmethod
    def steps(self, part: Any) -> int:
        """Batches per pass over ``part``."""

    @abc.abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The task loss of a batch (a scalar)."""

    def describe(self) -> dict[str, Any]:
        return {"task": type(self).__name__, "num_classes": self.num_classes}

    def make_supernet(self) -> nn.Module:
        """The freshly initialised supernet of the space (``forward(x, weights, active)``,
        ``num_choices``, ``one_hot(genotype)``, ``extract(genotype)``)."""
        from hwnas.search.supernet.network import Supernet

        return Supernet(
            self.space, head=self.make_head(), in_channels=self.in_channels, upsample=self.upsample
        )


class ClassificationTask(SupernetTask):
    """Image classification on a :class:`DatasetSplits` with the space's classifier head."""

    metric = "accuracy"

    def __init__(
        self,
        *,
        space: MobileNetSpace,
        data: DatasetSplits,
        settings: TrainSettings,
        arch_fraction: float = 0.2,
    ) -> None:
        self.space = space
        self.data = data
        self.settings = settings
        self.arch_fraction = arch_fraction
        self.num_classes = data.num_classes
        self.input_shape = tuple(data.input_shape)  # type: ignore[assignment]
        self.in_channels = data.input_shape[0]
        self.batch_size = settings.batch_size

    @classmethod
    def from_provider(cls, provider: Any, space: MobileNetSpace) -> ClassificationTask:
        """From a run's TrainingProvider (its dataset splits and training settings)."""
        return cls(space=space, data=provider.data, settings=provider.settings)

    def make_head(self) -> nn.Module:
        from hwnas.spaces.blocks import make_head

        last = self.space.slot_specs()[-1].out_channels
        return make_head(last, self.space.head_out_channels, self.num_classes, self.space.dropout)

    def build(self, genotype: Genotype) -> nn.Module:
        return self.space.build(
            genotype, num_classes=self.num_classes, in_channels=self.in_channels
        )

    def search_parts(self, seed: int) -> tuple[Split, Split]:
        from hwnas.training.datasets.splits import TensorSplit, stratified_split

        train = self.data.train
        fraction = self.settings.data_fraction
        if isinstance(train, TensorSplit):
            if fraction < 1.0:  # the same class-balanced subset the trainer would use
                train = train.subset(stratified_split(train.labels.numpy(), fraction, seed)[1])
            weights_idx, arch_idx = stratified_split(train.labels.numpy(), self.arch_fraction, seed)
            return train.subset(weights_idx), train.subset(arch_idx)
        from torch.utils.data import Subset

        order = np.random.default_rng(seed).permutation(len(train))
        order = order[: max(2, round(len(train) * fraction))]
        cut = max(1, round(len(order) * self.arch_fraction))
        return Subset(train, order[cut:].tolist()), Subset(train, order[:cut].tolist())

    def batches(self, part: Split, *, seed: int, device: torch.device) -> Iterator[Batch]:
        from hwnas.training.batches import make_batches

        return iter(
            make_batches(
                self.data,
                part,
                loader=self.settings.loader,
                batch_size=self.batch_size,
                device=device,
                seed=seed,
                augment=self.settings.augment,
                workers=self.settings.workers,
            )
        )

    def steps(self, part: Split) -> int:
        return max(1, len(part) // min(self.batch_size, len(part)))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            output.float(), target, label_smoothing=self.settings.label_smoothing
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dataset": self.data.name}
