"""Dataset splits as tensors, their description, and the stratified split every dataset uses."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset


#: Seed of the held-out test split where a dataset has none of its own (never the run's seed,
#: so every run reports on the same test images).
TEST_SEED = 20240


#: Image folders up to this many bytes of uint8 pixels are decoded once into memory.
IN_MEMORY_LIMIT = 2 << 30


IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, eq=False)
class TensorSplit:
    """Images (uint8 ``[N, C, H, W]``) and labels (int64 ``[N]``) held as tensors."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"TensorSplit({len(self)} images of {tuple(self.images.shape[1:])})"

    def subset(self, indices: np.ndarray | Sequence[int]) -> TensorSplit:
        import torch

        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return TensorSplit(self.images[index], self.labels[index])

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size() + self.labels.numel() * 8


#: A split: in-memory tensors, or a dataset whose items are ``(uint8 [C, H, W] tensor, label)``.
Split = Union[TensorSplit, "Dataset[Any]"]


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """One dataset, split; images are uint8 until :meth:`normalise`.

    ``mean`` and ``std`` are per channel on the 0..1 scale; ``crop_padding`` (pixels) and
    ``flip`` describe the training augmentation that suits the data (no flips for digits).
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    flip: bool = False
    classes: tuple[str, ...] = ()
    preprocessing: str = ""
    seed: int = 0

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Float images ``(x / 255 - mean) / std`` from uint8 ``[N, C, H, W]``, on their device."""
        import torch

        scale, shift = _affine(self.mean, self.std, images.device)
        return torch.addcmul(shift, images.float(), scale)

    def samples(self, split: str = "val", n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` images of ``split``, normalised (float), with their labels.

        For export checks and calibration: the exact input a trained candidate expects.
        """
        import torch

        part = self.split(split)
        n = min(n, len(part))
        if isinstance(part, TensorSplit):
            images, labels = part.images[:n], part.labels[:n]
        else:
            items = [part[i] for i in range(n)]
            images = torch.stack([x for x, _ in items])
            labels = torch.tensor([int(y) for _, y in items])
        return self.normalise(images), labels

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, not {name!r}")
        return getattr(self, name)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: what exports and reports document about the input."""
        return {
            "dataset": self.name,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "preprocessing": self.preprocessing,
            "sizes": {s: len(self.split(s)) for s in ("train", "val", "test")},
            "seed": self.seed,
        }


def _affine(
    mean: Sequence[float], std: Sequence[float], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * s), -m / s


# -- the catalogue ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset without loading it."""

    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int
    flip: bool
    val_fraction: float
    summary: str
    url: str = ""
    files: tuple[str, ...] = ()  # relative to data_dir; all present means "available"
    loader: str = ""  # key of catalog.RAW_LOADERS: the function that reads the raw splits
    extra: Mapping[str, Any] = field(default_factory=dict)


def _normalisation_note(mean: Sequence[float], std: Sequence[float]) -> str:
    m = ", ".join(f"{v:.4f}" for v in mean)
    s = ", ".join(f"{v:.4f}" for v in std)
    return f"input = (pixel / 255 - mean) / std per channel, mean ({m}), std ({s}); NCHW float32"


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)``: ``fraction`` of every class held out, drawn with ``seed``.

    Both are sorted by a seeded shuffle of the whole set, so that a prefix of either is a
    class-balanced sample too.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    held: list[np.ndarray] = []
    kept: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = round(fraction * len(members))
        if len(members) > 1:
            n = min(max(n, 1), len(members) - 1)
        held.append(members[:n])
        kept.append(members[n:])
    order = rng.permutation(len(labels))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))

    def by_rank(parts: list[np.ndarray]) -> np.ndarray:
        idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return idx[np.argsort(rank[idx], kind="stable")]

    return by_rank(kept), by_rank(held)


def _resized(split: TensorSplit, size: int) -> TensorSplit:
    if split.images.shape[-1] == size and split.images.shape[-2] == size:
        return split
    import torch
    from torch.nn import functional as F

    chunks = []
    for start in range(0, len(split), 4096):  # bounded float memory for large datasets
        x = split.images[start : start + 4096].float()
        y = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        chunks.append(y.round().clamp_(0, 255).to(torch.uint8))
    return TensorSplit(torch.cat(chunks), split.labels)


def _tensor_split(images: Any, labels: Any, *, channels_last_input: bool) -> TensorSplit:
    import torch

    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif channels_last_input:
        x = x.permute(0, 3, 1, 2)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    return TensorSplit(x.contiguous().to(torch.uint8), y)


def padded_crop_size(size: int) -> int:
    """Resize target before a centre crop of ``size`` (the usual 8/7 ratio, e.g. 256 for 224)."""
    return math.ceil(size * 8 / 7) if size >= 64 else size
