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
from hwnas.files import atomic_write
from hwnas.rundir import write_file

__all__ = ["load_weights", "read_metadata", "save_weights"]


def save_weights(
    path: str | os.PathLike[str],
    state: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``state`` to ``path`` atomically; metadata values are stored as JSON text.

    With ``root`` (the run directory holding ``path``) the write goes through
    :func:`hwnas.rundir.write_file`: never through a symlink, never outside ``root``.
    """
    from safetensors.torch import save

    path = Path(path)
    # safetensors refuses shared or non-contiguous storage; a CPU copy of each tensor avoids both.
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}
    meta = {str(k): json.dumps(v) for k, v in (metadata or {}).items()}
    data = save(tensors, metadata=meta)
    # Atomic: a killed run never leaves a truncated weights file behind.
    if root is not None:
        return write_file(root, path.relative_to(root).as_posix(), data)
    return atomic_write(path, data)


def load_weights(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` from a file written by :func:`save_weights`."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunError(f"weights file '{path}' does not exist")
    try:
        state = load_file(str(path), device=str(device))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise _unreadable(path, exc) from None
    return state, read_metadata(path)


def _unreadable(path: Path, exc: BaseException) -> RunError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return RunError(
        f"'{path}' is not a readable safetensors weights file ({reason}); delete it, or train "
        "the trial again"
    )


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a weights file, without reading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise _unreadable(Path(path), exc) from None
    out: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out
