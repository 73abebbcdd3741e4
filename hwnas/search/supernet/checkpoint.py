"""Supernet checkpoints under ``run_dir/strategy/``: one per finished epoch, written atomically.

``epoch-NNNN.safetensors`` holds the supernet's tensors and every head's theta
(``theta.<head>.<layer>``); ``epoch-NNNN.pt`` the optimiser and schedule states (tensors,
numbers and lists only: read back with ``torch.load(weights_only=True)``); ``latest.json``
names the last complete epoch and is replaced last, so a search killed while writing resumes
from the previous epoch. Older epochs are deleted once the new one is in place.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hwnas.errors import RunError
from hwnas.files import atomic_write

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

LATEST = "latest.json"


@dataclass
class Checkpoint:
    epoch: int  # epochs completed
    model: dict[str, torch.Tensor]
    theta: list[list[torch.Tensor]]  # [head][layer]
    optim: dict[str, Any]
    meta: dict[str, Any]


def _names(directory: Path, epoch: int) -> tuple[Path, Path]:
    stem = directory / f"epoch-{epoch:04d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".pt")


def save_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    from hwnas.training.weights import save_weights

    directory.mkdir(parents=True, exist_ok=True)
    tensors_path, optim_path = _names(directory, checkpoint.epoch)
    tensors = dict(checkpoint.model)
    for h, head in enumerate(checkpoint.theta):
        for layer, logits in enumerate(head):
            tensors[f"theta.{h}.{layer}"] = logits.detach()
    save_weights(tensors_path, tensors, {"epoch": checkpoint.epoch, **checkpoint.meta})
    buffer = io.BytesIO()
    torch.save(checkpoint.optim, buffer)
    atomic_write(optim_path, buffer.getvalue())  # random temporary name, never a symlink
    latest = directory / LATEST
    atomic_write(
        latest,
        json.dumps({"epoch": checkpoint.epoch, "fingerprint": checkpoint.meta.get("fingerprint")}),
    )
    for old in directory.glob("epoch-*"):
        if old not in (tensors_path, optim_path):
            old.unlink(missing_ok=True)
    return tensors_path


def load_checkpoint(directory: Path, *, fingerprint: str) -> Checkpoint | None:
    """The last complete checkpoint in ``directory``; None when there is none.

    RunError when it was made with other settings (resuming it would mix two searches).
    """
    from hwnas.training.weights import load_weights

    latest = directory / LATEST
    if not latest.is_file():
        return None
    try:
        info = json.loads(latest.read_text())
        epoch = int(info["epoch"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"supernet checkpoint index '{latest}' is unreadable ({exc})") from None
    if info.get("fingerprint") != fingerprint:
        raise RunError(
            f"'{directory}' holds a supernet checkpoint made with other options or data; "
            f"delete that folder to train the supernet afresh"
        )
    tensors_path, optim_path = _names(directory, epoch)
    state, meta = load_weights(tensors_path)
    theta: dict[int, dict[int, torch.Tensor]] = {}
    model = {}
    for name, tensor in state.items():
        if name.startswith("theta."):
            _, head, layer = name.split(".")
            theta.setdefault(int(head), {})[int(layer)] = tensor
        else:
            model[name] = tensor
    heads = [[layers[i] for i in sorted(layers)] for _, layers in sorted(theta.items())]
    try:
        optim = torch.load(optim_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a refused pickle, a truncated or foreign file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunError(
            f"supernet checkpoint '{optim_path}' is unreadable or holds more than tensors and "
            f"numbers ({reason[:200]}); delete '{directory}' to train the supernet afresh"
        ) from None
    return Checkpoint(epoch, model, heads, optim, meta)
