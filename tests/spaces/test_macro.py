"""NAS-Bench-Macro space: parameters and MACs as in the benchmark, text form, network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.errors import GenotypeError
from hwnas.profilers.cheap import count_macs, count_params
from hwnas.spaces import make_space
from hwnas.spaces.macro import MacroSpace
from hwnas.types import Genotype

JSON = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nas-bench-macro_cifar10.json"
)
# A seeded sample here; benchmarks/macro_exactness.py checks all 6,561.
SAMPLE = 500


@pytest.fixture(scope="module")
def space() -> MacroSpace:
    return MacroSpace()


@pytest.fixture(scope="module")
def table() -> dict[str, dict]:
    if not JSON.is_file():
        pytest.skip(f"benchmark table {JSON} not found")
    return json.loads(JSON.read_text())


def test_costs_match_benchmark(space: MacroSpace, table: dict[str, dict]) -> None:
    assert len(table) == space.size() == 6561
    keys = np.random.default_rng(0).choice(sorted(table), size=SAMPLE, replace=False)
    for key in keys:
        with torch.device("meta"):
            model = space.build(space.parse(str(key)), num_classes=10)
        assert count_params(model) == table[key]["params"], key
        assert count_macs(model, space.input_shape) == table[key]["flops"], key


def test_round_trip(space: MacroSpace) -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        genotype = space.sample(rng)
        assert len(genotype.spec) == 8
        assert space.parse(genotype.spec) == genotype
        assert Genotype.from_json(genotype.to_json()) == genotype
        assert space.mutate(genotype, rng) != genotype
        assert space.encode(genotype).shape == (space.encoding_size,) == (24,)
    assert space.parse(" 02012100\n").spec == "02012100"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [("", "0 characters"), ("0201210", "7 characters"), ("020121001", "9 characters"),
     ("02012103", "'3'"), ("0201210a", "'a'"), ("0 012100", "' '")],
)  # fmt: skip
def test_malformed_specs(space: MacroSpace, spec: str, problem: str) -> None:
    with pytest.raises(GenotypeError, match=problem) as info:
        space.parse(spec)
    assert "e.g. '02012100'" in str(info.value)


def test_forward(space: MacroSpace) -> None:
    torch.manual_seed(0)
    for spec in ("00000000", "12121212", "02012100"):
        model = space.build(space.parse(spec), num_classes=10).eval()
        with torch.no_grad():
            out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10)
        assert torch.isfinite(out).all()
    gray = space.build(space.parse("21000000"), num_classes=3, in_channels=1).eval()
    with torch.no_grad():
        assert gray(torch.randn(1, 1, 32, 32)).shape == (1, 3)


def test_identity_layers_are_free(space: MacroSpace) -> None:
    # A stride-1 identity has no parameters: moving it within a stage changes nothing, which
    # is why the benchmark shares one record between such architectures.
    with torch.device("meta"):
        a = space.build(space.parse("11110120"), num_classes=10)
        b = space.build(space.parse("11101102"), num_classes=10)
    assert count_params(a) == count_params(b)
    assert count_macs(a, space.input_shape) == count_macs(b, space.input_shape)


def test_options_and_layers() -> None:
    space = make_space("macro", {"stem_channels": 8, "head_channels": 64})
    assert isinstance(space, MacroSpace)
    assert space.config() == {"stem_channels": 8, "head_channels": 64}
    assert MacroSpace().config() == {"stem_channels": 32, "head_channels": 1280}
    layers = space.layers(space.parse("02012100"))
    assert [(layer.op, layer.kernel, layer.expansion) for layer in layers] == [
        ("identity", 0, 0.0), ("ir", 5, 6.0), ("identity", 0, 0.0), ("ir", 3, 3.0),
        ("ir", 5, 6.0), ("ir", 3, 3.0), ("identity", 0, 0.0), ("identity", 0, 0.0),
    ]  # fmt: skip
    assert [layer.channels for layer in layers] == [16, 16, 32, 32, 32, 64, 64, 64]
    assert [layer.stride for layer in layers] == [2, 1, 2, 1, 1, 2, 1, 1]
    model = space.build(space.parse("22222222"), num_classes=10)
    assert model.classifier.in_features == 64
    with pytest.raises(ValueError, match="head_channels"):
        MacroSpace(head_channels=0)


def test_import_does_not_load_torch() -> None:
    code = "import sys, hwnas.spaces.macro; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
