"""Peak memory of one inference, in bytes: weights plus the activations alive at the worst step.

CUDA: measured by the caching allocator (``max_memory_allocated`` after a reset), at the
profile's batch size, with weights and input on the device.

CPU: a liveness analysis of the traced graph. The model is traced with ``torch.fx`` and run
once node by node on real tensors, which shows every output's storage, so views and in-place
activations (which share their input's storage) are not counted twice. Walking the nodes in
order, a storage is alive from the node that creates it to the last node that reads it; the
peak is the largest sum of live storages, plus the transient working copy a convolution makes
(oneDNN reorders an operand into its blocked layout, about the size of its larger operand, and
the weights), plus the weights. Measured against torch's CPU allocator (``torch.profiler``,
see :func:`measure_cpu_peak_memory`) this agrees within 11% on the mobilenet space and on
torchvision models from AlexNet to DenseNet. Models that ``torch.fx`` cannot trace are
measured with the profiler instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch import nn

from hwnas.devices import DeviceProfile
from hwnas.profilers.env import measurement_env
from hwnas.types import Measurement

__all__ = [
    "PeakMemory",
    "PeakMemoryProfiler",
    "cuda_peak_memory",
    "estimate_peak_memory",
    "measure_cpu_peak_memory",
    "weight_bytes",
]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_FUNCTIONS = (torch.nn.functional.conv1d, torch.nn.functional.conv2d)


@dataclass(frozen=True)
class PeakMemory:
    """Bytes at the peak: ``total = weights + activations`` (activations include the input)."""

    total: int
    weights: int
    activations: int
    method: str  # "liveness", "profiler" or "cuda allocator"
    peak_node: str = ""  # the graph node at the peak (liveness only)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers as stored (shared tensors once)."""
    seen: dict[int, int] = {}
    for t in [*model.parameters(), *model.buffers()]:
        seen[id(t)] = t.numel() * t.element_size()
    return sum(seen.values())


def _real_cpu(model: nn.Module) -> nn.Module:
    on_meta = any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    if on_meta:
        return copy.deepcopy(model).to_empty(device="cpu")
    if any(t.device.type != "cpu" for t in model.parameters()):
        return copy.deepcopy(model).cpu()
    return model


def estimate_peak_memory(
    model: nn.Module, input_shape: Sequence[int], *, batch_size: int = 1
) -> PeakMemory:
    """Peak bytes on CPU from the liveness of the traced graph (see the module docstring).

    Falls back to :func:`measure_cpu_peak_memory` when ``torch.fx`` cannot trace the model.
    """
    model = _real_cpu(model)
    was_training = model.training
    model.eval()
    try:
        try:
            graph_module = torch.fx.symbolic_trace(model)
        except Exception:  # noqa: BLE001 - untraceable Python control flow: measure instead
            return measure_cpu_peak_memory(model, input_shape, batch_size=batch_size)
        x = torch.randn(batch_size, *input_shape)
        outputs = _run_nodes(graph_module, x)
    finally:
        model.train(was_training)
    weights = weight_bytes(model)
    owned = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    nodes = list(graph_module.graph.nodes)
    storages = {n: _storages(outputs.get(n)) for n in nodes}
    last_use: dict[int, int] = {}
    for i, node in enumerate(nodes):
        for source in (node, *node.all_input_nodes):
            for ptr, _ in storages[source]:
                last_use[ptr] = i
    modules = dict(graph_module.named_modules())
    live: dict[int, int] = {}
    peak, peak_node = 0, ""
    for i, node in enumerate(nodes):
        for ptr, size in storages[node]:
            if ptr not in owned:
                live[ptr] = size
        current = sum(live.values()) + _transient_bytes(node, modules, outputs)
        if current > peak:
            peak, peak_node = current, node.name
        for ptr in [p for p in live if last_use[p] <= i]:
            del live[ptr]
    return PeakMemory(peak + weights, weights, peak, "liveness", peak_node)


def _run_nodes(graph_module: torch.fx.GraphModule, x: torch.Tensor) -> dict[Any, Any]:
    """Every node's output, from one inference-mode run (the Interpreter frees nothing we keep)."""
    outputs: dict[Any, Any] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            result = super().run_node(n)
            outputs[n] = result
            return result

    with torch.inference_mode():
        Recorder(graph_module).run(x)
    return outputs


def _storages(value: Any) -> list[tuple[int, int]]:
    """(data pointer, bytes) of every tensor storage in a node's output."""
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        return [(storage.data_ptr(), storage.nbytes())]
    if isinstance(value, (tuple, list)):
        return [s for item in value for s in _storages(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _storages(item)]
    return []


def _nbytes(value: Any) -> int:
    return value.numel() * value.element_size() if isinstance(value, torch.Tensor) else 0


def _transient_bytes(
    node: torch.fx.Node, modules: dict[str, nn.Module], outputs: dict[Any, Any]
) -> int:
    """The working copy a convolution holds while it runs: its larger operand plus weights."""
    weight = 0
    if node.op == "call_module" and isinstance(modules.get(str(node.target)), _CONVS):
        weight = _nbytes(modules[str(node.target)].weight)
    elif node.op == "call_function" and node.target in _CONV_FUNCTIONS:
        weight = _nbytes(outputs.get(node.args[1])) if len(node.args) > 1 else 0
    else:
        return 0
    inputs = node.all_input_nodes
    largest_input = _nbytes(outputs.get(inputs[0])) if inputs else 0
    return max(largest_input, _nbytes(outputs.get(node))) + weight


def measure_cpu_peak_memory(
    model: nn.Module, input_shape: Sequence[int], *, batch_size: int = 1
) -> PeakMemory:
    """Peak bytes on CPU as torch's allocator reports it to ``torch.profiler``.

    The peak of bytes allocated during one inference (after a warm-up run), plus the weights
    and the input, which exist before it starts.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    model = _real_cpu(model)
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, *input_shape)
    try:
        with torch.inference_mode():
            model(x)
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                model(x)
    finally:
        model.train(was_training)
    peak = 0
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation:
            peak = max(peak, int(event.extra_fields.total_allocated))
        stack.extend(event.children)
    weights = weight_bytes(model)
    activations = peak + _nbytes(x)
    return PeakMemory(weights + activations, weights, activations, "profiler")


def cuda_peak_memory(
    model: nn.Module, input_shape: Sequence[int], *, batch_size: int = 1, device: str = "cuda:0"
) -> PeakMemory:
    """Peak bytes allocated on ``device`` during one inference, weights and input included.

    The process's other tensors on that device count too: measure in a process that holds
    nothing else there.
    """
    target = torch.device(device)
    model = model.eval().to(target)
    x = torch.randn(batch_size, *input_shape, device=target)
    with torch.inference_mode():
        model(x)  # cuDNN picks its algorithms and workspaces on the first call
        torch.cuda.synchronize(target)
        torch.cuda.reset_peak_memory_stats(target)
        model(x)
        torch.cuda.synchronize(target)
    peak = int(torch.cuda.max_memory_allocated(target))
    weights = weight_bytes(model)
    return PeakMemory(peak, weights, peak - weights, "cuda allocator")


class PeakMemoryProfiler:
    """``peak_memory`` in bytes at the profile's batch size (CUDA: measured; CPU: liveness)."""

    metric = "peak_memory"
    unit = "B"

    def __init__(self, *, profile: DeviceProfile) -> None:
        self.profile = profile

    def measure(self, model: nn.Module, input_shape: Sequence[int]) -> Measurement:
        batch = self.profile.batch_size
        if self.profile.device == "cuda":
            result = cuda_peak_memory(
                model, input_shape, batch_size=batch, device=self.profile.torch_device
            )
        else:
            result = estimate_peak_memory(model, input_shape, batch_size=batch)
        env = measurement_env(
            self.profile,
            input_shape,
            method=result.method,
            weights=result.weights,
            activations=result.activations,
        )
        return Measurement(
            self.metric, float(result.total), self.unit, device=self.profile.torch_device, env=env
        )
