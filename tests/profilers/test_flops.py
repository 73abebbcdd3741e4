"""MACs: the default backend equals fvcore's convolution + linear counts and the NAS-Bench-Macro
file; params and size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

from hwnas.errors import ConfigError
from hwnas.profilers.cheap import MACS_CONVENTION, count_macs
from hwnas.profilers.flops import MacsProfiler, SizeProfiler, fvcore_macs, macs
from hwnas.spaces.macro import MacroSpace
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.spaces.nb201 import NB201Space

pytest.importorskip("fvcore")


def _model(name: str):
    rng = np.random.default_rng(0)
    mobilenet = MobileNetSpace(se=True, hswish=True)
    if name == "mobilenet":
        return mobilenet.build(mobilenet.sample(rng), num_classes=10), (3, 32, 32)
    if name == "mobilenet_grouped":
        grouped = mobilenet.parse("-".join(["ir_k3_e1_g2"] * mobilenet.num_layers))
        return mobilenet.build(grouped, num_classes=10), (3, 32, 32)
    if name == "nb201":
        nb201 = NB201Space()
        return nb201.build(nb201.sample(rng), num_classes=10), (3, 32, 32)
    return torchvision.models.get_model(name), (3, 64, 64)


@pytest.mark.parametrize(
    "name", ["mobilenet", "mobilenet_grouped", "nb201", "resnet18", "mobilenet_v3_small"]
)
def test_default_backend_equals_fvcore_conv_and_linear(name: str) -> None:
    model, shape = _model(name)
    total, per_module = fvcore_macs(model, shape)
    assert count_macs(model, shape) == total > 0
    # The per-module breakdown adds up: the top-level children partition the model.
    children = [n for n in per_module if n and "." not in n]
    assert sum(per_module[n] for n in children) == total


def test_meta_models_count_the_same() -> None:
    space = MobileNetSpace()
    g = space.sample(np.random.default_rng(3))
    real = space.build(g, num_classes=10)
    with torch.device("meta"):
        meta = space.build(g, num_classes=10)
    assert macs(meta, (3, 32, 32)) == macs(real, (3, 32, 32), backend="fvcore")


def test_nas_bench_macro_values(macro_json) -> None:
    table = json.loads(macro_json.read_text())
    space = MacroSpace()
    for key in sorted(table)[::1300]:  # 6 architectures across the table
        model = space.build(space.parse(key), num_classes=10)
        assert count_macs(model, space.input_shape) == table[key]["flops"]
        assert fvcore_macs(model, space.input_shape)[0] == table[key]["flops"]


def test_measurement_states_its_convention() -> None:
    model = torchvision.models.resnet18()
    m = MacsProfiler().measure(model, (3, 32, 32))
    assert m.unit == "MAC" and m.env["convention"] == MACS_CONVENTION
    assert m.env["backend"] == "torch" and m.env["per"] == "image"
    assert MacsProfiler(backend="fvcore").measure(model, (3, 32, 32)).value == m.value
    assert SizeProfiler().measure(model, (3, 32, 32)).value == 4 * sum(
        p.numel() for p in model.parameters()
    ) + 4 * sum(b.numel() for b in model.buffers() if b.is_floating_point())
    with pytest.raises(ConfigError, match="torch, fvcore"):
        MacsProfiler(backend="ptflops")
