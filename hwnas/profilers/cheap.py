"""Cheap, device-independent costs: parameters, fp32 size and multiply-accumulates.

MACs come from torch's ``FlopCounterMode`` on the meta device (no memory, no arithmetic):
it counts convolutions and matrix products as 2 FLOPs per multiply-accumulate, so MACs =
FLOPs / 2. Element-wise work (BatchNorm, activations, pooling, additions) is not counted,
which is the convention of NAS papers and of fvcore.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

MACS_CONVENTION = "multiply-accumulates of convolutions and matrix products (FLOPs / 2)"


def count_params(model: nn.Module) -> int:
    """Number of parameters (BatchNorm affine parameters included, buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def fp32_size_bytes(model: nn.Module) -> int:
    """Bytes of the weights stored as fp32: parameters plus floating-point buffers."""
    floats = sum(p.numel() for p in model.parameters())
    floats += sum(b.numel() for b in model.buffers() if b.is_floating_point())
    return 4 * floats


# Shape-preserving element-wise modules that FlopCounterMode does not count anyway. On the
# meta device their Python implementations (BatchNorm's above all) cost 30x more than the
# convolutions, so the counting copy replaces them by Identity.
_ELEMENTWISE = (
    nn.modules.batchnorm._BatchNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.SiLU,
    nn.GELU,
    nn.Sigmoid,
    nn.Dropout,
)


_IDENTITY = nn.Identity()


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates for one input of ``input_shape`` (C, H, W), per image.

    Counts on the meta device (no memory, no arithmetic): a meta model as it is, any other
    through a meta copy. Element-wise modules are replaced by Identity while counting and put
    back afterwards, so the model is left as it was.
    """
    meta_model = model if all(t.is_meta for t in model.parameters()) else _meta_copy(model)
    swapped = _strip_elementwise(meta_model)
    was_training = meta_model.training
    try:
        meta_model.eval()
        x = torch.empty((1, *input_shape), device="meta")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            meta_model(x)
    finally:
        for parent, name, child in swapped:
            parent._modules[name] = child
        meta_model.train(was_training)
    return counter.get_total_flops() // 2


def _meta_copy(model: nn.Module) -> nn.Module:
    import copy

    with torch.device("meta"):
        # Copy the structure without copying real tensors: deepcopy with a memo that maps
        # every parameter and buffer to a meta tensor of the same shape.
        memo: dict[int, object] = {}
        for t in [*model.parameters(), *model.buffers()]:
            memo[id(t)] = (
                nn.Parameter(torch.empty_like(t, device="meta"), t.requires_grad)
                if isinstance(t, nn.Parameter)
                else torch.empty_like(t, device="meta")
            )
        return copy.deepcopy(model, memo)


def _strip_elementwise(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace element-wise children by Identity; return what was replaced, to restore it.

    Writes ``_modules`` directly: ``Module.__setattr__`` costs ~60 us per call here, more than
    the whole count of a small network.
    """
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for name, child in list(module.named_children()):
        if isinstance(child, _ELEMENTWISE):
            module._modules[name] = _IDENTITY
            swapped.append((module, name, child))
        else:
            swapped.extend(_strip_elementwise(child))
    return swapped
