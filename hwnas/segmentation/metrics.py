"""Mean intersection over union (mIoU), the accuracy objective of segmentation."""

from __future__ import annotations

import numpy as np
import torch

from hwnas.segmentation.data import IGNORE

__all__ = ["confusion_matrix", "miou"]


def confusion_matrix(
    prediction: torch.Tensor, target: torch.Tensor, num_classes: int, ignore: int = IGNORE
) -> torch.Tensor:
    """``[true, predicted]`` pixel counts (int64); pixels labelled ``ignore`` are left out."""
    keep = target != ignore
    index = target[keep] * num_classes + prediction[keep]
    counts = torch.bincount(index.flatten(), minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu()


def miou(confusion: torch.Tensor) -> tuple[float, list[float]]:
    """(mIoU in %, IoU per class in %); classes absent from both labels and predictions are
    NaN in the list and left out of the mean (as the VOC and Cityscapes evaluations do)."""
    c = confusion.double().numpy()
    intersection = np.diag(c)
    union = c.sum(axis=0) + c.sum(axis=1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan) * 100.0
    present = iou[~np.isnan(iou)]
    return (float(present.mean()) if present.size else 0.0), [float(v) for v in iou]
