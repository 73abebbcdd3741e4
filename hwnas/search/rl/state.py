"""Plain-JSON state for the RL strategy's torch parts: tensors, generators, thread pinning.

Weights travel as base64 of safetensors bytes (never pickle), a ``torch.Generator`` as base64
of its state bytes, so ``state_dict`` stays JSON and a resumed strategy continues bit for bit.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator, Mapping

import torch


def tensors_to_text(tensors: Mapping[str, torch.Tensor]) -> str:
    """Base64 of the safetensors serialisation of ``tensors`` (copied to contiguous CPU)."""
    from safetensors.torch import save

    data = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    return base64.b64encode(save(data)).decode("ascii")


def tensors_from_text(text: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(base64.b64decode(text.encode("ascii")))


def generator_to_text(generator: torch.Generator) -> str:
    return base64.b64encode(generator.get_state().numpy().tobytes()).decode("ascii")


def generator_from_text(generator: torch.Generator, text: str) -> None:
    raw = bytearray(base64.b64decode(text.encode("ascii")))
    generator.set_state(torch.frombuffer(raw, dtype=torch.uint8).clone())


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch and numpy's BLAS single-threaded inside, restoring the caller's settings.

    The networks and matrices are tiny, so one thread is also the fastest: on a loaded
    machine a multi-threaded BLAS made a 200 x 200 eigendecomposition 18x slower. Above all
    it makes the float reductions (and so every future ask) independent of the thread count.
    """
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if previous != 1:
            torch.set_num_threads(previous)
