"""Segmentation datasets: images (uint8 ``[N, C, H, W]``) with per-pixel class masks.

``shapes`` is synthetic and offline (for tests and quick checks): squares, discs and triangles
in class colours (with noise) on a noisy background, class 0 being the background. ``voc``
(PASCAL VOC 2012, 21 classes) and ``cityscapes`` (19 training classes, fine annotations) are
read with torchvision from ``data_dir`` when they are there; they are never downloaded (both
need a licence or a login) and their absence is a :class:`~hwnas.errors.DatasetError` that
says where to put them. Images and masks are resized to ``resolution`` and kept in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from hwnas.errors import DatasetError

__all__ = [
    "IGNORE",
    "SEGMENTATION_DATASETS",
    "SegSplit",
    "SegmentationData",
    "load_segmentation",
    "synthetic_shapes",
]

#: Mask value of pixels that count for no class (VOC's object borders, Cityscapes' void).
IGNORE = 255
SEGMENTATION_DATASETS = ("shapes", "voc", "cityscapes")


@dataclass(frozen=True, eq=False)
class SegSplit:
    images: torch.Tensor  # uint8 [N, C, H, W]
    masks: torch.Tensor  # int64 [N, H, W], class index or IGNORE

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: Any) -> SegSplit:
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return SegSplit(self.images[index], self.masks[index])


@dataclass(frozen=True, eq=False)
class SegmentationData:
    name: str
    train: SegSplit
    val: SegSplit
    test: SegSplit
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return (int(c), int(h), int(w))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255.0 - mean) / std

    def split(self, name: str) -> SegSplit:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, not {name!r}")
        return getattr(self, name)


# -- synthetic shapes ------------------------------------------------------------------------
_SHAPES = ("square", "disc", "triangle")
_COLOURS = np.array([[220, 60, 60], [60, 200, 80], [70, 90, 230]], dtype=np.float64)


def _draw(rng: np.random.Generator, size: int, num_shapes: int) -> tuple[np.ndarray, np.ndarray]:
    image = rng.normal(110, 25, (size, size, 3))
    mask = np.zeros((size, size), dtype=np.int64)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(num_shapes):
        kind = int(rng.integers(len(_SHAPES)))
        r = int(rng.integers(size // 8, size // 4 + 1))
        cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
        if kind == 0:
            inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        elif kind == 1:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:  # an upward triangle: below the apex, within the widening sides
            inside = (yy >= cy - r) & (yy <= cy + r) & (abs(xx - cx) <= (yy - (cy - r)) / 2)
        colour = _COLOURS[kind] + rng.normal(0, 20, 3)
        image[inside] = colour + rng.normal(0, 12, (int(inside.sum()), 3))
        mask[inside] = kind + 1
    return np.clip(image, 0, 255).astype(np.uint8), mask


def synthetic_shapes(
    *, images: int = 384, size: int = 32, seed: int = 0, max_shapes: int = 3
) -> SegmentationData:
    """``images`` synthetic images of ``size`` x ``size`` pixels, 4 classes (background +
    square, disc, triangle), split 60/20/20 into train / val / test; same seed, same data."""
    if images < 10 or size < 16:
        raise DatasetError("synthetic shapes need at least 10 images of at least 16x16 pixels")
    rng = np.random.default_rng(seed)
    drawn = [_draw(rng, size, int(rng.integers(1, max_shapes + 1))) for _ in range(images)]
    x = torch.from_numpy(np.stack([d[0] for d in drawn])).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.stack([d[1] for d in drawn]))
    n_train, n_val = int(images * 0.6), int(images * 0.2)
    parts = (slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, images))
    train, val, test = (SegSplit(x[p], y[p]) for p in parts)
    pixels = x[:n_train].float() / 255.0
    mean = tuple(float(v) for v in pixels.mean(dim=(0, 2, 3)))
    std = tuple(float(v) for v in pixels.std(dim=(0, 2, 3)))
    return SegmentationData("shapes", train, val, test, 4, mean, std, ("background", *_SHAPES))


# -- torchvision datasets --------------------------------------------------------------------
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# Cityscapes label ids -> its 19 training ids (the official table); everything else is void.
_CITYSCAPES_LABELS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
_CITYSCAPES_TRAIN_IDS = {label: train_id for train_id, label in enumerate(_CITYSCAPES_LABELS)}


def load_segmentation(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    resolution: int = 128,
    seed: int = 0,
    limit: int | None = None,
) -> SegmentationData:
    """``shapes`` (synthetic), ``voc`` or ``cityscapes`` (from ``data_dir``), resized to
    ``resolution`` (the shorter side for Cityscapes, whose images are 1:2)."""
    if name == "shapes":
        return synthetic_shapes(size=resolution if resolution <= 64 else 32, seed=seed)
    if name not in SEGMENTATION_DATASETS:
        raise DatasetError(
            f"unknown segmentation dataset '{name}'; choose one of "
            f"{', '.join(SEGMENTATION_DATASETS)}"
        )
    root = Path(data_dir) if data_dir is not None else Path.home() / ".cache" / "hwnas" / "data"
    if name == "voc":
        return _load_voc(root, resolution, seed, limit)
    return _load_cityscapes(root, resolution, seed, limit)


def _load_voc(root: Path, resolution: int, seed: int, limit: int | None) -> SegmentationData:
    base = root / "VOCdevkit" / "VOC2012"
    if not (base / "SegmentationClass").is_dir():
        raise DatasetError(
            f"PASCAL VOC 2012 is not in {base}; download VOCtrainval_11-May-2012.tar from "
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and extract it in "
            f"{root} (hwnas never downloads it)"
        )
    from torchvision.datasets import VOCSegmentation

    def read(image_set: str) -> SegSplit:
        ds = VOCSegmentation(str(root), year="2012", image_set=image_set, download=False)
        return _decode(ds, (resolution, resolution), limit, lambda m: m)

    trainval = read("train")
    keep, held = _split_indices(len(trainval), 0.1, seed)
    test = read("val")
    classes = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")  # fmt: skip
    return SegmentationData(
        "voc", trainval.subset(keep), trainval.subset(held), test, 21, *_IMAGENET, classes
    )


def _load_cityscapes(root: Path, resolution: int, seed: int, limit: int | None) -> SegmentationData:
    base = root / "cityscapes"
    if not ((base / "leftImg8bit").is_dir() and (base / "gtFine").is_dir()):
        raise DatasetError(
            f"Cityscapes is not in {base}; after registering at https://www.cityscapes-dataset.com "
            "download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip and extract both "
            f"in {base} (hwnas never downloads it)"
        )
    from torchvision.datasets import Cityscapes

    lookup = np.full(256, IGNORE, dtype=np.int64)
    for label, train_id in _CITYSCAPES_TRAIN_IDS.items():
        lookup[label] = train_id

    def read(split: str) -> SegSplit:
        ds = Cityscapes(str(base), split=split, mode="fine", target_type="semantic")
        return _decode(ds, (resolution, resolution * 2), limit, lambda m: lookup[m])

    trainval = read("train")
    keep, held = _split_indices(len(trainval), 0.1, seed)
    return SegmentationData(
        "cityscapes", trainval.subset(keep), trainval.subset(held), read("val"), 19, *_IMAGENET
    )


def _decode(dataset: Any, size: tuple[int, int], limit: int | None, relabel: Any) -> SegSplit:
    images, masks = [], []
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(count):
        image, mask = dataset[i]
        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
        m = torch.from_numpy(np.asarray(relabel(np.asarray(mask, dtype=np.int64))))
        x = F.interpolate(x[None].float(), size=size, mode="bilinear", align_corners=False)
        m = F.interpolate(m[None, None].float(), size=size, mode="nearest")
        images.append(x[0].round().clamp(0, 255).to(torch.uint8))
        masks.append(m[0, 0].long())
    return SegSplit(torch.stack(images), torch.stack(masks))


def _split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, round(n * fraction))
    return np.sort(order[cut:]), np.sort(order[:cut])
