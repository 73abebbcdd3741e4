"""Trained weights on disk: safetensors only (no pickle, so a weights file cannot run code).

Each file holds a model's ``state_dict`` and string metadata (genotype, epochs trained,
dataset, input shape ...) so that a child can inherit from it and an export can rebuild it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hwnas.errors import RunError

__all__ = ["load_weights", "read_metadata", "save_weights"]


def save_weights(
    path: str | os.PathLike[str],
    state: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``state`` to ``path`` atomically; metadata values are stored as JSON text."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared or non-contiguous storage; a CPU copy of each tensor avoids both.
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}
    meta = {str(k): json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)  # like the run's other files (safetensors writes it owner-only)
    os.replace(tmp, path)  # a killed run never leaves a truncated weights file behind
    return path


def load_weights(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` from a file written by :func:`save_weights`."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunError(f"weights file '{path}' does not exist")
    return load_file(str(path), device=str(device)), read_metadata(path)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a weights file, without reading its tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    out: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out
