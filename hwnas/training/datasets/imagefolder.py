"""``imagefolder:PATH``: one folder per class, through torchvision's ImageFolder.

Layouts: ``PATH/train/CLASS/*`` with ``PATH/test/CLASS/*`` (or ``PATH/val/CLASS/*``, used as
the test split, since the search draws its validation split from the training images), or
``PATH/CLASS/*`` alone, from which a fixed 20% is held out as the test split. Images are
resized (shorter side) and centre-cropped to ``resolution``, RGB, uint8; small folders are
decoded once into memory, large ones stay lazy and are read by a DataLoader while training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import DatasetError
from hwnas.training.datasets.splits import (
    TEST_SEED,
    DatasetInfo,
    DatasetSplits,
    Split,
    TensorSplit,
    _normalisation_note,
    padded_crop_size,
    stratified_split,
)


def load_image_folder(
    info: DatasetInfo, *, name: str, seed: int, val_fraction: float, memory_limit: int
) -> DatasetSplits:
    from torch.utils.data import Subset

    root = Path(info.extra["root"])
    classes: tuple[str, ...] = info.extra["classes"]
    size = info.input_shape[1]
    if (root / "train").is_dir():
        trainval = _folder(root / "train", classes, size)
        test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
        if test_dir is None:
            raise DatasetError(
                f"image folder '{root}' has train/ but no test/ or val/ beside it; add one, "
                "or put the class folders directly in it"
            )
        test_full = _folder(test_dir, classes, size)
        test_idx = np.arange(len(test_full))
        layout = f"{root}/train for training and validation, {test_dir} for test"
    else:
        full = _folder(root, classes, size)
        trainval_idx, test_idx = stratified_split(np.asarray(full.targets), 0.2, TEST_SEED)
        trainval, test_full = Subset(full, trainval_idx.tolist()), full
        layout = f"{root}, 20% held out as the test split"
    labels = np.asarray(_targets(trainval))
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    splits: dict[str, Split] = {
        "train": Subset(trainval, train_idx.tolist()),
        "val": Subset(trainval, val_idx.tolist()),
        "test": Subset(test_full, test_idx.tolist()),
    }
    pixels = 3 * size * size
    if (len(labels) + len(test_idx)) * pixels <= memory_limit:
        splits = {k: _decode(v) for k, v in splits.items()}
    if len(splits["train"]) == 0 or len(splits["val"]) == 0:
        raise DatasetError(
            f"image folder '{root}' is too small to split into training and validation images"
        )
    resize = padded_crop_size(size)
    return DatasetSplits(
        name=name,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        num_classes=len(classes),
        input_shape=(3, size, size),
        mean=info.mean,
        std=info.std,
        crop_padding=info.crop_padding,
        flip=info.flip,
        classes=classes,
        preprocessing=(
            f"image folder {layout}; RGB, shorter side resized to {resize} (bilinear, "
            f"antialiased), centre crop {size}x{size}; " + _normalisation_note(info.mean, info.std)
        ),
        seed=seed,
    )


def _folder(directory: Path, classes: tuple[str, ...], size: int) -> Any:
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    class _FixedClasses(ImageFolder):
        # The test folder may lack a class; label indices must still match training's.
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return list(classes), {c: i for i, c in enumerate(classes)}

    transform = transforms.Compose(
        [
            transforms.Resize(padded_crop_size(size), antialias=True),
            transforms.CenterCrop(size),
            transforms.PILToTensor(),
        ]
    )
    try:
        return _FixedClasses(str(directory), transform=transform, allow_empty=True)
    except (FileNotFoundError, OSError) as exc:
        raise DatasetError(f"cannot read image folder '{directory}': {exc}") from None


def _targets(dataset: Any) -> list[int]:
    from torch.utils.data import Subset

    if isinstance(dataset, Subset):
        inner = _targets(dataset.dataset)
        return [inner[i] for i in dataset.indices]
    return list(dataset.targets)


def _decode(dataset: Any) -> TensorSplit:
    """Decode every image once (in worker processes when there are many)."""
    import torch
    from torch.utils.data import DataLoader

    n = len(dataset)
    labels = torch.tensor(_targets(dataset), dtype=torch.int64)
    if n == 0:
        return TensorSplit(torch.zeros((0, 3, 1, 1), dtype=torch.uint8), labels)
    workers = 0 if n < 2000 else min(8, os.cpu_count() or 1)
    loader = DataLoader(dataset, batch_size=256, num_workers=workers)
    images = torch.cat([x for x, _ in loader])
    return TensorSplit(images.contiguous(), labels)
