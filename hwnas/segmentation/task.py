"""Segmentation as a supernet task, and the plain training / mIoU evaluation of one network."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hwnas.search.supernet.tasks import SupernetTask
from hwnas.segmentation.data import IGNORE, SegmentationData, SegSplit
from hwnas.segmentation.metrics import confusion_matrix, miou
from hwnas.segmentation.model import build_segmentation_network, make_segmentation_head
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.training.settings import TrainSettings
from hwnas.types import Genotype

__all__ = ["SegmentationTask", "evaluate_miou", "train_segmentation"]

Batch = tuple[torch.Tensor, torch.Tensor]


def seg_batches(
    data: SegmentationData,
    split: SegSplit,
    *,
    batch_size: int,
    seed: int,
    device: torch.device,
    augment: bool,
) -> Iterator[Batch]:
    """Endless shuffled batches (random horizontal flips of image and mask together)."""
    generator = torch.Generator().manual_seed(seed)
    size = min(batch_size, len(split))
    while True:
        order = torch.randperm(len(split), generator=generator)
        for start in range(0, len(split) - size + 1, size):
            index = order[start : start + size]
            x, y = split.images[index], split.masks[index]
            if augment:
                flip = torch.rand(len(index), generator=generator) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
                y = torch.where(flip.view(-1, 1, 1), y.flip(2), y)
            yield data.normalise(x.to(device)), y.to(device)


class SegmentationTask(SupernetTask):
    """Per-pixel cross-entropy on :class:`SegmentationData` with the LR-ASPP-like head."""

    metric = "miou"
    upsample = True

    def __init__(
        self,
        *,
        space: MobileNetSpace,
        data: SegmentationData,
        settings: TrainSettings,
        arch_fraction: float = 0.2,
    ) -> None:
        self.space = space
        self.data = data
        self.settings = settings
        self.arch_fraction = arch_fraction
        self.num_classes = data.num_classes
        self.input_shape = data.input_shape
        self.in_channels = data.input_shape[0]
        self.batch_size = settings.batch_size

    def make_head(self) -> nn.Module:
        return make_segmentation_head(self.space, self.num_classes)

    def build(self, genotype: Genotype) -> nn.Module:
        return build_segmentation_network(
            self.space, genotype, num_classes=self.num_classes, in_channels=self.in_channels
        )

    def search_parts(self, seed: int) -> tuple[SegSplit, SegSplit]:
        train = self.data.train
        order = np.random.default_rng(seed).permutation(len(train))
        order = order[: max(4, round(len(train) * self.settings.data_fraction))]
        cut = max(2, round(len(order) * self.arch_fraction))
        return train.subset(order[cut:]), train.subset(order[:cut])

    def batches(self, part: SegSplit, *, seed: int, device: torch.device) -> Iterator[Batch]:
        return seg_batches(self.data, part, batch_size=self.batch_size, seed=seed,
                           device=device, augment=self.settings.augment)  # fmt: skip

    def steps(self, part: SegSplit) -> int:
        return max(1, len(part) // min(self.batch_size, len(part)))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target, ignore_index=IGNORE)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dataset": self.data.name}


def train_segmentation(
    model: nn.Module,
    task: SegmentationTask,
    *,
    epochs: float,
    device: torch.device,
    seed: int,
) -> float:
    """Train ``model`` on the whole training split (cosine schedule); returns seconds."""
    s = task.settings
    train = task.data.train
    steps_per_epoch = task.steps(train)
    total = max(1, round(epochs * steps_per_epoch))
    model.to(device).train()
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": s.decay}, {"params": rest, "weight_decay": 0.0}]
    if s.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            groups, lr=s.peak_lr, momentum=s.momentum, nesterov=s.momentum > 0
        )
    else:
        optimizer = torch.optim.AdamW(groups, lr=s.peak_lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
    )
    batches = task.batches(train, seed=seed, device=device)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(total):
            x, y = next(batches)
            loss = task.loss(model(x), y)
            if not math.isfinite(float(loss.detach())):
                from hwnas.training.trainer import TrainingDiverged

                raise TrainingDiverged("segmentation loss is not finite; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        _recalibrate_bn(model, task, device)
    return time.perf_counter() - started


def _recalibrate_bn(model: nn.Module, task: SegmentationTask, device: torch.device) -> None:
    """Exact BatchNorm statistics over (up to 512) training images, as the classifier
    trainer does: after a few hundred steps the running averages are still off."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    train = task.data.train
    with torch.no_grad():
        for start in range(0, min(len(train), 512), 64):
            x = task.data.normalise(train.images[start : start + 64].to(device))
            if x.shape[0] > 1:
                model(x)
    for m in norms:
        m.momentum = 0.1


def evaluate_miou(
    model: nn.Module,
    data: SegmentationData,
    split: str = "val",
    *,
    device: torch.device,
    batch_size: int = 64,
) -> tuple[float, list[float]]:
    """(mIoU %, IoU per class %) of ``model`` on every image of ``split``."""
    part = data.split(split)
    was_training = model.training
    model.eval()
    total = torch.zeros(data.num_classes, data.num_classes, dtype=torch.int64)
    try:
        with torch.inference_mode():
            for start in range(0, len(part), batch_size):
                x = data.normalise(part.images[start : start + batch_size].to(device))
                y = part.masks[start : start + batch_size].to(device)
                total += confusion_matrix(model(x).argmax(1), y, data.num_classes)
    finally:
        model.train(was_training)
    return miou(total)
