"""Batches of normalised images on the training device, from memory or through a DataLoader.

:class:`MemoryBatches` keeps a whole :class:`TensorSplit` (uint8) on the device and indexes it
per step: no worker processes and no host-to-device copies, which is what makes a small
network's training fast on a GPU and on a CPU. :class:`LoaderBatches` reads any split through a
``torch.utils.data.DataLoader`` (pinned memory, worker processes) for data that does not fit.
Both crop and flip on the device, on whole batches, and normalise there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from hwnas.training.datasets.splits import DatasetSplits, Split, TensorSplit

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = ["Batches", "LoaderBatches", "MemoryBatches", "augment", "fits_on_device", "make_batches"]

#: Share of the free GPU memory a dataset may take to be kept on the GPU.
GPU_DATA_SHARE = 0.25


class Batches:
    """An endless, seeded stream of ``(images, labels)`` training batches on ``device``."""

    kind: str = ""

    def __init__(
        self,
        data: DatasetSplits,
        split: Split,
        *,
        batch_size: int,
        device: torch.device,
        seed: int,
        augment: bool,
        channels_last: bool = False,
    ) -> None:
        self.data = data
        self.split = split
        self.batch_size = min(batch_size, len(split))
        self.device = device
        self.augment = augment
        self.channels_last = channels_last
        # Index order and augmentation come from generators of their own, so the model's
        # initialisation and dropout (global RNG) do not shift the data order between runs.
        self.generator = torch.Generator().manual_seed(seed)
        self.aug_generator = torch.Generator(device=device).manual_seed(seed + 1)

    @property
    def steps_per_epoch(self) -> int:
        # The last partial batch is dropped: a batch of one breaks BatchNorm.
        return max(1, len(self.split) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            for images, labels in self._epoch():
                yield self._finish(images, labels)

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def _finish(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment:
            images = augment(
                images,
                padding=self.data.crop_padding,
                flip=self.data.flip,
                generator=self.aug_generator,
            )
        x = self.data.normalise(images)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels


class MemoryBatches(Batches):
    """The split lives on the device as uint8; each batch is an index into it."""

    kind = "memory"

    def __init__(self, data: DatasetSplits, split: Split, **kwargs: Any) -> None:
        if not isinstance(split, TensorSplit):
            raise TypeError("MemoryBatches needs a TensorSplit")
        super().__init__(data, split, **kwargs)
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.split), generator=self.generator).to(self.device)
        for step in range(self.steps_per_epoch):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield self.images[index], self.labels[index]


class LoaderBatches(Batches):
    """A DataLoader over the split; batches are copied to the device asynchronously."""

    kind = "dataloader"

    def __init__(self, data: DatasetSplits, split: Split, *, workers: int, **kwargs: Any) -> None:
        from torch.utils.data import DataLoader, TensorDataset

        super().__init__(data, split, **kwargs)
        dataset: Dataset[Any] = (
            TensorDataset(split.images, split.labels) if isinstance(split, TensorSplit) else split
        )
        cuda = self.device.type == "cuda"
        self.loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            generator=self.generator,
            num_workers=workers,
            pin_memory=cuda,
            persistent_workers=workers > 0,
        )

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield (
                images.to(self.device, non_blocking=True),
                torch.as_tensor(labels).to(self.device, non_blocking=True),
            )


def fits_on_device(split: Split, device: torch.device) -> bool:
    """Whether ``split`` can be kept on ``device`` (always on CPU, where it already is)."""
    if not isinstance(split, TensorSplit):
        return False
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return split.nbytes <= GPU_DATA_SHARE * free


def make_batches(
    data: DatasetSplits,
    split: Split,
    *,
    loader: str,
    batch_size: int,
    device: torch.device,
    seed: int,
    augment: bool,
    channels_last: bool = False,
    workers: int = 2,
) -> Batches:
    """``loader``: ``memory``, ``dataloader`` or ``auto`` (memory when the split fits)."""
    common = dict(
        batch_size=batch_size,
        device=device,
        seed=seed,
        augment=augment,
        channels_last=channels_last,
    )
    if loader == "memory" or (loader == "auto" and fits_on_device(split, device)):
        return MemoryBatches(data, split, **common)
    return LoaderBatches(data, split, workers=workers, **common)


def eval_batches(
    data: DatasetSplits,
    split: Split,
    *,
    batch_size: int,
    device: torch.device,
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every image of ``split`` once, in order, normalised, without augmentation."""
    if isinstance(split, TensorSplit):
        for start in range(0, len(split), batch_size):
            images = split.images[start : start + batch_size].to(device, non_blocking=True)
            labels = split.labels[start : start + batch_size].to(device, non_blocking=True)
            yield _prepare(data, images, channels_last), labels
        return
    from torch.utils.data import DataLoader

    for images, labels in DataLoader(split, batch_size=batch_size, num_workers=2):
        labels = torch.as_tensor(labels).to(device)
        yield _prepare(data, images.to(device, non_blocking=True), channels_last), labels


def _prepare(data: DatasetSplits, images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    x = data.normalise(images)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def augment(
    images: torch.Tensor, *, padding: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Random crops after zero padding by ``padding`` pixels and random horizontal flips.

    Batched on the images' device (one gather, no Python loop over images).
    """
    n, c, h, w = images.shape
    device = images.device
    if padding > 0:
        padded = torch.nn.functional.pad(images, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n, 1), device=device, generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n, 1), device=device, generator=generator)
        rows = (dy + torch.arange(h, device=device)).view(n, 1, h, 1)
        cols = (dx + torch.arange(w, device=device)).view(n, 1, 1, w)
        # Gather the rows of each image's window, then its columns.
        images = padded.gather(2, rows.expand(n, c, h, w + 2 * padding))
        images = images.gather(3, cols.expand(n, c, h, w))
    if flip:
        mask = torch.rand((n, 1, 1, 1), device=device, generator=generator) < 0.5
        images = torch.where(mask, images.flip(3), images)
    return images
