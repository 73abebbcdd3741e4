"""Tensor surgery shared by the morphisms: index maps, Net2Wider scaling, kernel resizing.

An index map gives, for each channel of the child, the parent channel it copies, or -1 for a
channel without one (new output channels take fresh values, new input channels zeros).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

BN_EPS = 1e-5  # torch's BatchNorm default; the identity BN below relies on it


def positional(child: int, parent: int) -> np.ndarray:
    """Channel ``j`` to channel ``j`` while the parent has it, else -1."""
    index = np.arange(child)
    index[index >= parent] = -1
    return index


def duplicate(parent: int, child: int, rng: np.random.Generator) -> np.ndarray:
    """Net2Wider's map: the parent's channels, then ``child - parent`` random copies of them."""
    extra = rng.integers(0, parent, size=child - parent) if child > parent else []
    return np.concatenate([np.arange(parent), np.asarray(extra, dtype=int)]).astype(int)


def fan_in_scale(index: np.ndarray) -> np.ndarray:
    """1 / (number of child channels copying the same parent channel); 1 for -1 entries.

    Consumers of duplicated channels divide their weights by this, so the sum is unchanged.
    """
    scale = np.ones(len(index))
    valid = index >= 0
    if valid.any():
        counts = np.bincount(index[valid])
        scale[valid] = 1.0 / counts[index[valid]]
    return scale


def take(tensor: torch.Tensor, dim: int, index: np.ndarray, fill: torch.Tensor) -> torch.Tensor:
    """``tensor`` indexed by ``index`` along ``dim``; -1 entries take ``fill`` (child-shaped)."""
    idx = torch.as_tensor(np.where(index >= 0, index, 0), dtype=torch.long)
    out = tensor.index_select(dim, idx).clone()
    missing = np.flatnonzero(index < 0)
    if len(missing):
        m = torch.as_tensor(missing, dtype=torch.long)
        out.index_copy_(dim, m, fill.index_select(dim, m).to(out.dtype))
    return out


def take_inputs(tensor: torch.Tensor, index: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    """Input channels (dim 1) by ``index`` times ``scale``; -1 entries become zeros."""
    idx = torch.as_tensor(np.where(index >= 0, index, 0), dtype=torch.long)
    out = tensor.index_select(1, idx).clone()
    factor = torch.as_tensor(np.where(index >= 0, scale, 0.0), dtype=out.dtype)
    shape = [1] * out.dim()
    shape[1] = len(index)
    return out * factor.view(shape)


def resize_kernel(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """Zero-pad (exact for same padding) or centre-crop (approximate) the spatial kernel."""
    current = weight.shape[-1]
    if kernel == current:
        return weight
    if kernel > current:
        pad = (kernel - current) // 2
        return F.pad(weight, (pad, pad, pad, pad))
    start = (current - kernel) // 2
    return weight[..., start : start + kernel, start : start + kernel].clone()


def identity_conv(channels: int, kernel: int, like: torch.Tensor) -> torch.Tensor:
    """A ``kernel x kernel`` conv weight that maps each channel to itself."""
    weight = torch.zeros(channels, channels, kernel, kernel, dtype=like.dtype)
    centre = kernel // 2
    weight[torch.arange(channels), torch.arange(channels), centre, centre] = 1.0
    return weight


def bn_identity(channels: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
    """BatchNorm tensors that are the identity in eval mode: (x - 0) / sqrt(1 - eps + eps)."""
    return {
        "weight": torch.ones(channels, dtype=like.dtype),
        "bias": torch.zeros(channels, dtype=like.dtype),
        "running_mean": torch.zeros(channels, dtype=like.dtype),
        "running_var": torch.full((channels,), 1.0 - BN_EPS, dtype=like.dtype),
    }


def bn_zero(channels: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
    """BatchNorm tensors whose output is exactly zero (gamma = beta = 0)."""
    return {
        "weight": torch.zeros(channels, dtype=like.dtype),
        "bias": torch.zeros(channels, dtype=like.dtype),
        "running_mean": torch.zeros(channels, dtype=like.dtype),
        "running_var": torch.ones(channels, dtype=like.dtype),
    }


BN_VECTORS = ("weight", "bias", "running_mean", "running_var")


def take_bn(
    parent: dict, fresh: dict, parent_prefix: str, child_prefix: str, index: np.ndarray
) -> dict[str, torch.Tensor]:
    """A child BatchNorm's tensors, its channels taken from the parent's by ``index``."""
    out = {
        f"{child_prefix}.{name}": take(
            parent[f"{parent_prefix}.{name}"], 0, index, fresh[f"{child_prefix}.{name}"]
        )
        for name in BN_VECTORS
    }
    out[f"{child_prefix}.num_batches_tracked"] = parent[
        f"{parent_prefix}.num_batches_tracked"
    ].clone()
    return out


def channel_norms(weight: torch.Tensor) -> np.ndarray:
    """L2 norm of each output filter (dim 0), the usual pruning criterion."""
    return weight.detach().flatten(1).norm(dim=1).cpu().numpy()


def keep_largest(scores: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` largest scores, in their original order."""
    return np.sort(np.argsort(-scores, kind="stable")[:keep])
