"""Multiply-accumulates, parameters and size as profilers; fvcore as an optional MAC backend.

Convention (both backends): MACs of convolutions and matrix products (linear layers, their
bias excluded), per image; element-wise work (BatchNorm, activations,
pooling, additions) is not counted. The default backend is :func:`hwnas.profilers.cheap.count_macs`
(torch's ``FlopCounterMode`` on the meta device, FLOPs / 2). ``fvcore`` (the ``[fvcore]``
extra) traces the model with real tensors; it is slower but gives per-module breakdowns and a
cross-check: its ``conv`` and ``linear``/``matmul`` counts are the same MACs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.profilers.cheap import MACS_CONVENTION, count_macs, count_params, fp32_size_bytes
from hwnas.types import Measurement

__all__ = [
    "BACKENDS",
    "FVCORE_MAC_OPS",
    "MacsProfiler",
    "ParamsProfiler",
    "SizeProfiler",
    "fvcore_macs",
    "macs",
]

BACKENDS = ("torch", "fvcore")
#: fvcore operator names whose counts are multiply-accumulates of convolutions and products.
FVCORE_MAC_OPS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum", "mm"})


def macs(model: nn.Module, input_shape: Sequence[int], *, backend: str = "torch") -> int:
    """Multiply-accumulates for one image of ``input_shape`` (C, H, W)."""
    if backend == "torch":
        return count_macs(model, input_shape)
    if backend == "fvcore":
        return fvcore_macs(model, input_shape)[0]
    raise ConfigError(f"unknown MAC backend '{backend}'; choose one of: {', '.join(BACKENDS)}")


def fvcore_macs(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, dict[str, int]]:
    """fvcore's convolution + matrix-product MACs for one image, and the same per module.

    The per-module mapping has fvcore's module names (``""`` for the whole model,
    ``"layers.3.expand.0"`` ...) and counts only the MAC operators, so it sums like the total.
    Meta models are counted through a real CPU copy (fvcore traces with real tensors).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # fvcore imports torch.jit.script
            from fvcore.nn import FlopCountAnalysis
    except ImportError:
        raise ConfigError("the fvcore backend needs fvcore: pip install 'hwnas[fvcore]'") from None
    if any(p.is_meta for p in model.parameters()):
        model = _real_copy(model)
    was_training = model.training
    model.eval()
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            analysis = FlopCountAnalysis(model, torch.zeros(1, *input_shape, device=device))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            per_module_ops = analysis.by_module_and_operator()
    finally:
        model.train(was_training)
    per_module = {
        name: int(sum(v for op, v in ops.items() if op in FVCORE_MAC_OPS))
        for name, ops in per_module_ops.items()
    }
    return per_module.get("", 0), per_module


def _real_copy(model: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(model)
    return clone.to_empty(device="cpu")


class MacsProfiler:
    """``macs``: multiply-accumulates per image, with the convention in ``env``."""

    metric = "macs"
    unit = "MAC"

    def __init__(self, *, backend: str = "torch") -> None:
        if backend not in BACKENDS:
            raise ConfigError(
                f"unknown MAC backend '{backend}'; choose one of: {', '.join(BACKENDS)}"
            )
        self.backend = backend

    def measure(self, model: nn.Module, input_shape: Sequence[int]) -> Measurement:
        value = macs(model, input_shape, backend=self.backend)
        env: Mapping[str, Any] = {
            "input_shape": [int(v) for v in input_shape],
            "per": "image",
            "backend": self.backend,
            "convention": MACS_CONVENTION,
        }
        return Measurement(self.metric, float(value), self.unit, env=env)


class ParamsProfiler:
    """``params``: number of parameters (BatchNorm affine included, buffers excluded)."""

    metric = "params"
    unit = "count"

    def measure(self, model: nn.Module, input_shape: Sequence[int]) -> Measurement:
        return Measurement(self.metric, float(count_params(model)), self.unit)


class SizeProfiler:
    """``size``: bytes of the weights as fp32 (parameters and floating-point buffers)."""

    metric = "size"
    unit = "B"

    def measure(self, model: nn.Module, input_shape: Sequence[int]) -> Measurement:
        return Measurement(
            self.metric, float(fp32_size_bytes(model)), self.unit, env={"dtype": "float32"}
        )
