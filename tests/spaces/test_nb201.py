"""NAS-Bench-201 space: benchmark index order, text form, and the built network."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.errors import GenotypeError
from hwnas.profilers.cheap import count_macs, count_params
from hwnas.spaces import make_space
from hwnas.spaces.nb201 import OPS, NB201Space
from hwnas.types import Genotype

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CSV = DATA / "nb201_cifar10_hw.csv"
# Index 1 of the benchmark.
BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def uniform(op: str) -> str:
    """The arch string with ``op`` on all six edges."""
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space()


@pytest.mark.skipif(not CSV.is_file(), reason=f"benchmark table {CSV} not found")
def test_index_order_matches_benchmark(space: NB201Space) -> None:
    with CSV.open(newline="") as f:
        table = {int(row["arch_idx"]): row["arch_str"] for row in csv.DictReader(f)}
    assert sorted(table) == list(range(space.size()))
    for index, arch in table.items():
        genotype = space.from_index(index)
        assert genotype.spec == arch
        assert space.index_of(genotype) == index


def test_index_extremes(space: NB201Space) -> None:
    # Index 0 is not the first enumerated code: the order comes from the package data.
    assert space.from_index(0).spec.startswith("|avg_pool_3x3~0|")
    assert space.index_of(space.parse(BEST)) == 1
    for bad in (-1, 15625, 2.5):
        with pytest.raises(GenotypeError, match=r"0\.\.15624"):
            space.from_index(bad)  # type: ignore[arg-type]


def test_round_trip_and_encoding(space: NB201Space) -> None:
    rng = np.random.default_rng(0)
    assert space.size() == 15625 == len(OPS) ** 6
    for _ in range(50):
        genotype = space.sample(rng)
        assert space.parse(genotype.spec) == genotype
        assert space.to_spec(space.from_spec(genotype.spec)) == genotype.spec
        assert Genotype.from_json(genotype.to_json()) == genotype
        assert space.from_index(space.index_of(genotype)) == genotype
        child = space.mutate(genotype, rng)
        assert child != genotype
        assert (space.to_indices(child) != space.to_indices(genotype)).sum() == 1
        assert space.encode(genotype).shape == (space.encoding_size,) == (30,)
    assert space.parse(f"  {BEST}\n").spec == BEST


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "nodes"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "nodes"),
        (BEST.replace("avg_pool_3x3", "max_pool_3x3"), "unknown operation 'max_pool_3x3'"),
        (BEST.replace("skip_connect~2", "skip_connect~1"), "should read 'op~2'"),
        (BEST.replace("nor_conv_3x3~0|+|", "nor_conv_3x3|+|", 1), "should read 'op~0'"),
        (BEST.replace("|skip_connect~2|", "|"), "node 3 has 2 inputs"),
        (BEST + "+|none~0|", "nodes"),
        (BEST.replace("|+|", "+|", 1), "not enclosed"),
    ],
)
def test_malformed_specs(space: NB201Space, spec: str, problem: str) -> None:
    with pytest.raises(GenotypeError, match=problem) as info:
        space.parse(spec)
    assert "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in str(info.value)  # shows the expected form


def test_wrong_space_rejected(space: NB201Space) -> None:
    with pytest.raises(GenotypeError, match="belongs to space 'macro'"):
        space.build(Genotype("macro", BEST), num_classes=10)


def test_forward(space: NB201Space) -> None:
    torch.manual_seed(0)
    model = space.build(space.parse(BEST), num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10)
    assert torch.isfinite(out).all()
    gray = space.build(space.parse(BEST), num_classes=5, in_channels=1).eval()
    with torch.no_grad():
        assert gray(torch.randn(2, 1, 32, 32)).shape == (2, 5)


def test_published_cost_range(space: NB201Space) -> None:
    # NAS-Bench-201 reports 0.073-1.531 MB parameters and 7.78-220.11 M FLOPs (MACs) on CIFAR-10,
    # the extremes being the all-'none' and the all-'nor_conv_3x3' cells.
    with torch.device("meta"):
        largest = space.build(space.parse(uniform("nor_conv_3x3")), num_classes=10)
        smallest = space.build(space.parse(uniform("none")), num_classes=10)
    assert count_params(largest) == 1_531_546
    assert count_params(smallest) == 73_306
    assert count_macs(largest, space.input_shape) == 220_119_680
    assert count_macs(smallest, space.input_shape) == 7_783_040


def test_parameter_free_edges(space: NB201Space) -> None:
    with torch.device("meta"):
        counts = {
            op: count_params(space.build(space.parse(uniform(op)), num_classes=10)) for op in OPS
        }
    assert counts["none"] == counts["skip_connect"] == counts["avg_pool_3x3"]
    # 15 cells x 6 edges of ReLU-conv-BN; widths 16, 32, 64 (5 cells each).
    per_cell = {k: sum(6 * (c * c * k * k + 2 * c) for c in (16, 32, 64)) * 5 for k in (1, 3)}
    assert counts["nor_conv_1x1"] - counts["none"] == per_cell[1]
    assert counts["nor_conv_3x3"] - counts["none"] == per_cell[3]


def test_all_none_cell_outputs_zeros(space: NB201Space) -> None:
    model = space.build(space.parse(uniform("none")), num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    # Every cell outputs zeros, and so do the freshly initialised reduction blocks and BN-ReLU,
    # so the logits are the classifier's bias.
    torch.testing.assert_close(out, model.classifier.bias.detach().expand(1, 10))


def test_options_and_layers() -> None:
    space = make_space("nb201", {"channels": 8, "cells_per_stage": 1})
    assert isinstance(space, NB201Space)
    assert space.config() == {"channels": 8, "cells_per_stage": 1}
    assert NB201Space(**space.config()).config() == space.config()
    genotype = space.parse(BEST)
    layers = space.layers(genotype)
    assert [layer.op for layer in layers] == space.choices(genotype)
    assert [layer.kernel for layer in layers] == [3, 3, 3, 0, 3, 0]
    assert {layer.channels for layer in layers} == {8}
    assert {layer.stride for layer in layers} == {1}
    model = space.build(genotype, num_classes=10)
    assert len(model.cells) == 1 + 1 + 1 + 1 + 1  # 3 stages of 1 cell, 2 reduction blocks
    with pytest.raises(ValueError, match="channels"):
        NB201Space(channels=0)


def test_import_does_not_load_torch() -> None:
    code = "import sys, hwnas.spaces.nb201; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _outputs_with_shared_weights(space: NB201Space, specs: list[str]) -> list[torch.Tensor]:
    """Outputs of the specs' networks in eval mode, each given the first network's weights and
    (randomised) batch-norm statistics wherever a tensor of the same name and shape exists."""
    torch.manual_seed(0)
    reference = space.build(space.parse(specs[0]), num_classes=10).eval()
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.weight, module.bias, module.running_mean):
                tensor.data.normal_()
            module.running_var.data.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 32, 32)
    outputs = []
    for spec in specs:
        net = space.build(space.parse(spec), num_classes=10).eval()
        own = net.state_dict()
        shared = {
            k: v for k, v in reference.state_dict().items() if k in own and own[k].shape == v.shape
        }
        net.load_state_dict(shared, strict=False)
        with torch.no_grad():
            outputs.append(net(x))
    return outputs


def test_function_key_groups_cells_that_compute_the_same_function(space: NB201Space) -> None:
    # Edge 3<-2 is none, so node 2 is unused: what flows into it changes nothing.
    base = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    unused_differ = (
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    live_differs = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    )
    keys = [space.function_key(space.parse(s)) for s in (base, unused_differ, live_differs)]
    assert keys[0] == keys[1] != keys[2]
    reference, same, other = _outputs_with_shared_weights(
        space, [base, unused_differ, live_differs]
    )
    assert torch.equal(same, reference)
    assert not torch.allclose(other, reference, atol=1e-3)

    # Node 1 receives nothing, so its outgoing edges carry nothing (zeros at initialisation;
    # a per-channel constant once batch norm has learnt a shift).
    no_input = (
        "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|"
    )
    no_input_differ = (
        "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    assert space.function_key(space.parse(no_input)) == space.function_key(
        space.parse(no_input_differ)
    )
    assert space.function_key(space.parse(uniform("none"))) == "zero"

    # A node sums its inputs: node 2 = conv(x) + x either way round.
    conv_first = "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    skip_first = "|skip_connect~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"
    assert space.function_key(space.parse(conv_first)) == space.function_key(
        space.parse(skip_first)
    )
