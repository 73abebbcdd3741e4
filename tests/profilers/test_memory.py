"""Peak memory: the liveness estimate against torch's measured CPU allocations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from hwnas.profilers.memory import (
    PeakMemoryProfiler,
    estimate_peak_memory,
    measure_cpu_peak_memory,
    weight_bytes,
)
from hwnas.spaces.mobilenet import MobileNetSpace


def _cases():
    space = MobileNetSpace()
    rng = np.random.default_rng(0)
    for i in range(3):
        yield f"mobilenet-{i}", space.build(space.sample(rng), num_classes=10), (3, 32, 32), 1
    g = space.sample(rng)
    yield "mobilenet-batch8", space.build(g, num_classes=10), (3, 32, 32), 8
    yield "resnet18", torchvision.models.resnet18(), (3, 64, 64), 1
    yield "mobilenet_v2", torchvision.models.mobilenet_v2(), (3, 64, 64), 2


CASES = list(_cases())


@pytest.mark.parametrize(("name", "model", "shape", "batch"), CASES, ids=[c[0] for c in CASES])
def test_liveness_estimate_within_20_percent_of_measured(name, model, shape, batch) -> None:
    estimate = estimate_peak_memory(model, shape, batch_size=batch)
    measured = measure_cpu_peak_memory(model, shape, batch_size=batch)
    assert estimate.method == "liveness" and measured.method == "profiler"
    assert estimate.weights == measured.weights == weight_bytes(model)
    assert abs(estimate.total - measured.total) <= 0.2 * measured.total, (
        estimate,
        measured,
    )


def test_views_and_inplace_activations_are_not_counted_twice() -> None:
    # In-place activations write into their input and Flatten returns a view: nothing new is
    # allocated. Copying activations hold their input and output at once.
    inplace = nn.Sequential(nn.ReLU(inplace=True), nn.Hardswish(inplace=True), nn.Flatten())
    copying = nn.Sequential(nn.ReLU(), nn.Hardswish(), nn.Flatten())
    x_bytes = 4 * 8 * 16 * 16
    assert estimate_peak_memory(inplace, (4, 16, 16), batch_size=2).activations == x_bytes
    assert estimate_peak_memory(copying, (4, 16, 16), batch_size=2).activations == 2 * x_bytes
    # A convolution also holds a working copy of its larger operand and of its weights.
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    out_bytes = 4 * 2 * 8 * 16 * 16
    expected = x_bytes + out_bytes + out_bytes + 4 * conv.weight.numel()
    assert estimate_peak_memory(conv, (4, 16, 16), batch_size=2).activations == expected


def test_untraceable_models_are_measured_instead() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return y if y.sum() > 0 else -y  # data-dependent: torch.fx cannot trace it

    result = estimate_peak_memory(Branchy(), (3, 16, 16))
    assert result.method == "profiler" and result.total > result.weights > 0


def test_profiler_measurement(fast_cpu) -> None:
    space = MobileNetSpace()
    model = space.build(space.sample(np.random.default_rng(1)), num_classes=10)
    m = PeakMemoryProfiler(profile=fast_cpu).measure(model, space.input_shape)
    assert m.unit == "B" and m.env["method"] == "liveness"
    assert m.value == m.env["weights"] + m.env["activations"]
    assert m.env["batch_size"] == 1 and m.env["input_shape"] == [3, 32, 32]


@pytest.mark.gpu
def test_cuda_peak_memory_grows_with_batch() -> None:
    from hwnas.profilers.memory import cuda_peak_memory

    model = torchvision.models.resnet18()
    one = cuda_peak_memory(model, (3, 64, 64), batch_size=1)
    many = cuda_peak_memory(model, (3, 64, 64), batch_size=16)
    assert one.total >= one.weights and many.total > one.total
    assert one.method == "cuda allocator"
