"""Datasets for training candidates: train / validation / test splits of uint8 images.

Every dataset is returned as :class:`DatasetSplits`: images stay uint8 ``[N, C, H, W]`` (4x less
memory than float, so CIFAR fits on any GPU) and are normalised per batch on the training device
by :meth:`DatasetSplits.normalise`. Small datasets are in-memory tensors (:class:`TensorSplit`);
an image folder too large for memory stays a lazy ``torch.utils.data.Dataset`` of the same
uint8 images.

The test split is fixed (the dataset's own, or a held-out part chosen with a fixed seed) and is
only for the final report; the validation split, which the search sees, is drawn from the
training data with the run's seed, stratified by class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import DatasetError
from hwnas.training.datasets.splits import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    IN_MEMORY_LIMIT,
    TEST_SEED,
    DatasetInfo,
    DatasetSplits,
    Split,
    TensorSplit,
    _normalisation_note,
    _resized,
    _tensor_split,
    stratified_split,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetSplits",
    "Split",
    "TensorSplit",
    "dataset_info",
    "default_data_dir",
    "ensure_available",
    "load_dataset",
    "stratified_split",
]


def _mnist_files(folder: str) -> tuple[str, ...]:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    names += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return tuple(f"{folder}/raw/{n}" for n in names)


DATASETS: Mapping[str, DatasetInfo] = MappingProxyType(
    {
        "digits": DatasetInfo(
            num_classes=10,
            input_shape=(1, 16, 16),
            mean=(0.3,),  # replaced by the statistics of the non-test images when loaded
            std=(0.4,),
            crop_padding=1,
            flip=False,
            val_fraction=0.2,
            summary="scikit-learn's bundled 8x8 digits (1,797 images), resized; no download",
            loader="_raw_digits",
        ),
        "cifar10": DatasetInfo(
            num_classes=10,
            input_shape=(3, 32, 32),
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            crop_padding=4,
            flip=True,
            val_fraction=0.1,
            summary="CIFAR-10, 50,000 + 10,000 images of 32x32",
            url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            files=(
                *(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
                "cifar-10-batches-py/test_batch",
            ),
            loader="_raw_cifar",
            extra={"cls": "CIFAR10"},
        ),
        "cifar100": DatasetInfo(
            num_classes=100,
            input_shape=(3, 32, 32),
            mean=(0.5071, 0.4865, 0.4409),
            std=(0.2673, 0.2564, 0.2762),
            crop_padding=4,
            flip=True,
            val_fraction=0.1,
            summary="CIFAR-100, 50,000 + 10,000 images of 32x32",
            url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            files=("cifar-100-python/train", "cifar-100-python/test"),
            loader="_raw_cifar",
            extra={"cls": "CIFAR100"},
        ),
        "mnist": DatasetInfo(
            num_classes=10,
            input_shape=(1, 28, 28),
            mean=(0.1307,),
            std=(0.3081,),
            crop_padding=2,
            flip=False,
            val_fraction=0.1,
            summary="MNIST digits, 60,000 + 10,000 images of 28x28",
            url="https://ossci-datasets.s3.amazonaws.com/mnist/ (4 .gz files)",
            files=_mnist_files("MNIST"),
            loader="_raw_mnist",
            extra={"cls": "MNIST"},
        ),
        "fashionmnist": DatasetInfo(
            num_classes=10,
            input_shape=(1, 28, 28),
            mean=(0.2860,),
            std=(0.3530,),
            crop_padding=2,
            flip=True,
            val_fraction=0.1,
            summary="Fashion-MNIST, 60,000 + 10,000 images of 28x28",
            url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ (4 .gz files)",
            files=_mnist_files("FashionMNIST"),
            loader="_raw_mnist",
            extra={"cls": "FashionMNIST"},
        ),
        "svhn": DatasetInfo(
            num_classes=10,
            input_shape=(3, 32, 32),
            mean=(0.4377, 0.4438, 0.4728),
            std=(0.1980, 0.2010, 0.1970),
            crop_padding=2,
            flip=False,
            val_fraction=0.1,
            summary="SVHN house numbers, 73,257 + 26,032 images of 32x32",
            url="http://ufldl.stanford.edu/housenumbers/ (train_32x32.mat, test_32x32.mat)",
            files=("train_32x32.mat", "test_32x32.mat"),
            loader="_raw_svhn",
        ),
    }
)

IMAGEFOLDER = "imagefolder:"


def default_data_dir() -> Path:
    """``$HWNAS_DATA_DIR``, else ``~/.cache/hwnas/datasets``."""
    return Path(os.environ.get("HWNAS_DATA_DIR", "~/.cache/hwnas/datasets")).expanduser()


def dataset_info(name: str, *, resolution: int | None = None) -> DatasetInfo:
    """Classes, input shape and normalisation of ``name`` without loading any images.

    An image folder is scanned for its class folders (cheap); DatasetError if it is missing.
    """
    if name.startswith(IMAGEFOLDER):
        root = _folder_root(name)
        classes = _folder_classes(root)
        res = resolution or 32
        return DatasetInfo(
            num_classes=len(classes),
            input_shape=(3, res, res),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            crop_padding=max(1, res // 8),
            flip=True,
            val_fraction=0.1,
            summary=f"image folder {root}",
            extra={"root": str(root), "classes": classes},
        )
    info = DATASETS.get(name)
    if info is None:
        import difflib

        close = difflib.get_close_matches(name, list(DATASETS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DatasetError(
            f"unknown dataset '{name}'{hint}; choose one of: {', '.join(DATASETS)}, "
            "or imagefolder:PATH"
        )
    if resolution is not None and resolution != info.input_shape[1]:
        c = info.input_shape[0]
        pad = max(1, round(info.crop_padding * resolution / info.input_shape[1]))
        return _replace_info(info, input_shape=(c, resolution, resolution), crop_padding=pad)
    return info


def _replace_info(info: DatasetInfo, **changes: Any) -> DatasetInfo:
    from dataclasses import replace

    return replace(info, **changes)


def ensure_available(name: str, *, data_dir: str | os.PathLike[str] | None, download: bool) -> None:
    """Make sure the files of ``name`` are in ``data_dir``: download them or raise DatasetError.

    Cheap when they are there (file checks only): call it up front so that a missing dataset
    stops a search with one clear message instead of failing every trial.
    """
    if name == "digits":
        return
    if name.startswith(IMAGEFOLDER):
        _folder_classes(_folder_root(name))
        return
    info = dataset_info(name)
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if all((root / f).is_file() for f in info.files):
        return
    if not download:
        raise DatasetError(_missing_message(name, info, root, "download is off"))
    try:
        root.mkdir(parents=True, exist_ok=True)
        _raw_loader(info)(name, info, root, download=True, only_fetch=True)
    except Exception as exc:  # noqa: BLE001 - any failure to fetch means the same thing here
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise DatasetError(_missing_message(name, info, root, reason)) from None


def _missing_message(name: str, info: DatasetInfo, root: Path, reason: str) -> str:
    others = ", ".join(Path(f).name for f in info.files[1:])
    return (
        f"dataset '{name}' is not in {root} and could not be downloaded ({reason}); "
        f"on a machine without network, fetch {info.url} and unpack it so that "
        f"{root}/{info.files[0]} (and beside it: {others}) exist, or pass --data-dir where "
        "they are"
    )


def _raw_loader(info: DatasetInfo) -> Callable[..., tuple[TensorSplit, TensorSplit]]:
    """The function that reads ``info``'s raw splits (one of the ``_raw_*`` loaders below)."""
    return RAW_LOADERS[info.loader]


# -- loading ----------------------------------------------------------------------------------
def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    val_fraction: float | None = None,
    resolution: int | None = None,
    download: bool = True,
) -> DatasetSplits:
    """Train / validation / test splits of ``name``.

    ``name``: ``digits`` (offline, 16x16 by default), ``cifar10``, ``cifar100``, ``mnist``,
    ``fashionmnist``, ``svhn`` (downloaded into ``data_dir`` when missing and ``download``),
    or ``imagefolder:PATH``. ``val_fraction`` of the training images (stratified, drawn with
    ``seed``) form the validation split; None takes the dataset's default. ``resolution``
    (pixels, square) resizes the images; None keeps the dataset's size (32 for image folders).
    """
    info = dataset_info(name, resolution=resolution)
    val_fraction = info.val_fraction if val_fraction is None else float(val_fraction)
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if name.startswith(IMAGEFOLDER):
        from hwnas.training.datasets.imagefolder import load_image_folder

        return load_image_folder(
            info, name=name, seed=seed, val_fraction=val_fraction, memory_limit=IN_MEMORY_LIMIT
        )
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    ensure_available(name, data_dir=root, download=download)
    loader = _raw_loader(info)
    trainval, test = loader(name, info, root, download=False)
    size = info.input_shape[1]
    trainval, test = _resized(trainval, size), _resized(test, size)
    mean, std, note = info.mean, info.std, ""
    if name == "digits":
        # No published statistics: use those of the non-test images (independent of the seed).
        x = trainval.images.float() / 255.0
        mean = tuple(x.mean(dim=(0, 2, 3)).tolist())
        std = tuple(x.std(dim=(0, 2, 3)).tolist())
        note = (
            "8x8 digit images (values 0..16) scaled to 0..255 and resized to "
            f"{size}x{size} (bilinear); "
        )
    train_idx, val_idx = stratified_split(trainval.labels.numpy(), val_fraction, seed)
    return DatasetSplits(
        name=name,
        train=trainval.subset(train_idx),
        val=trainval.subset(val_idx),
        test=test,
        num_classes=info.num_classes,
        input_shape=info.input_shape,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        crop_padding=info.crop_padding,
        flip=info.flip,
        preprocessing=note + _normalisation_note(mean, std),
        seed=seed,
    )


def _raw_digits(
    name: str, info: DatasetInfo, root: Path, *, download: bool, only_fetch: bool = False
) -> tuple[TensorSplit, TensorSplit]:
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 0..16 -> 0..255 on the 8x8 grid; _resized brings it to the wanted resolution.
    images = torch.from_numpy(np.round(digits.images * (255.0 / 16.0)).astype(np.uint8))
    full = TensorSplit(
        images.unsqueeze(1).contiguous(), torch.from_numpy(digits.target.astype(np.int64))
    )
    trainval_idx, test_idx = stratified_split(digits.target, 0.2, TEST_SEED)
    return full.subset(trainval_idx), full.subset(test_idx)


def _raw_cifar(
    name: str, info: DatasetInfo, root: Path, *, download: bool, only_fetch: bool = False
) -> tuple[TensorSplit, TensorSplit]:
    from torchvision import datasets

    cls = getattr(datasets, info.extra["cls"])
    # torchvision checks the files' MD5 sums against the published ones before reading them.
    train = cls(str(root), train=True, download=download)
    if only_fetch:
        return None, None  # type: ignore[return-value]
    test = cls(str(root), train=False, download=download)
    return (
        _tensor_split(train.data, train.targets, channels_last_input=True),
        _tensor_split(test.data, test.targets, channels_last_input=True),
    )


def _raw_mnist(
    name: str, info: DatasetInfo, root: Path, *, download: bool, only_fetch: bool = False
) -> tuple[TensorSplit, TensorSplit]:
    from torchvision import datasets

    cls = getattr(datasets, info.extra["cls"])
    train = cls(str(root), train=True, download=download)
    if only_fetch:
        return None, None  # type: ignore[return-value]
    test = cls(str(root), train=False, download=download)
    return (
        _tensor_split(train.data, train.targets, channels_last_input=False),
        _tensor_split(test.data, test.targets, channels_last_input=False),
    )


def _raw_svhn(
    name: str, info: DatasetInfo, root: Path, *, download: bool, only_fetch: bool = False
) -> tuple[TensorSplit, TensorSplit]:
    from torchvision import datasets

    train = datasets.SVHN(str(root), split="train", download=download)
    test = datasets.SVHN(str(root), split="test", download=download)
    if only_fetch:
        return None, None  # type: ignore[return-value]
    return (
        _tensor_split(train.data, train.labels, channels_last_input=False),
        _tensor_split(test.data, test.labels, channels_last_input=False),
    )


# -- image folders ----------------------------------------------------------------------------
def _folder_root(name: str) -> Path:
    path = name[len(IMAGEFOLDER) :].strip()
    if not path:
        raise DatasetError("write imagefolder:PATH, e.g. imagefolder:data/flowers")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"image folder '{root}' does not exist; put one folder per class in it "
            "(PATH/CLASS/image.png), or PATH/train/CLASS/... and PATH/test/CLASS/..."
        )
    return root.resolve()


def _folder_classes(root: Path) -> tuple[str, ...]:
    base = root / "train" if (root / "train").is_dir() else root
    classes = tuple(sorted(p.name for p in base.iterdir() if p.is_dir()))
    if len(classes) < 2:
        raise DatasetError(
            f"image folder '{base}' has {len(classes)} class folder(s); it needs at least two "
            "(PATH/CLASS/image.png, one folder per class)"
        )
    return classes


#: The raw-split readers by the name a :class:`DatasetInfo` gives in ``loader``.
RAW_LOADERS: Mapping[str, Callable[..., tuple[TensorSplit, TensorSplit]]] = MappingProxyType(
    {
        "_raw_digits": _raw_digits,
        "_raw_cifar": _raw_cifar,
        "_raw_mnist": _raw_mnist,
        "_raw_svhn": _raw_svhn,
    }
)
