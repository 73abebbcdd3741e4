"""The mobilenet (FBNet-style) space: structure, canonical form, real torch networks."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops.misc import SqueezeExcitation

from hwnas.errors import GenotypeError
from hwnas.spaces import make_space
from hwnas.spaces.blocks import ChannelShuffle, InvertedResidual, MobileNetNetwork, make_block
from hwnas.spaces.mobilenet import BASE_BLOCKS, MobileNetSpace
from hwnas.spaces.mobilenet_spec import BlockChoice, parse_choice
from hwnas.types import Genotype

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def space() -> MobileNetSpace:
    return MobileNetSpace()


def _forward(model: nn.Module, resolution: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.randn(1, 3, resolution, resolution))


def test_module_imports_without_torch() -> None:
    code = "import sys, hwnas.spaces.mobilenet; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_builds_default_space() -> None:
    space = make_space("mobilenet")
    assert isinstance(space, MobileNetSpace)
    assert space.input_shape == (3, 32, 32)
    assert space.num_layers == 10


def test_samples_build_run_and_round_trip(space: MobileNetSpace) -> None:
    torch.manual_seed(0)
    for seed in range(20):
        genotype = space.sample(np.random.default_rng(seed))
        space.validate(genotype)
        assert space.parse(space.to_spec(space.choices(genotype))) == genotype
        assert Genotype.from_json(json.loads(json.dumps(genotype.to_json()))) == genotype
        model = space.build(genotype, num_classes=10)
        assert isinstance(model, MobileNetNetwork)
        assert len(model.layers) == space.num_layers
        out = _forward(model, 32)
        assert out.shape == (1, 10)
        assert torch.isfinite(out).all()


def test_canonical_form_and_alternatives(space: MobileNetSpace) -> None:
    spec = "ir_k3_e1-ir_k5_e6-skip-ir_k3_e1_g2-skip-ir_k5_e3-skip-ir_k3_e6-skip-ir_k5_e1_g2"
    assert space.parse(spec).spec == spec
    loose = " K3_E1 -k5_e6-SKIP-k3_e1_g2-skip-ir_k5_e3-skip-k3_e6-skip-k5_e1_g2"
    assert space.parse(loose).spec == spec
    with pytest.raises(GenotypeError, match="canonical"):
        space.validate(Genotype("mobilenet", loose))


def test_validate_rejects_bad_genotypes(space: MobileNetSpace) -> None:
    good = ["ir_k3_e6"] * space.num_layers
    # Layer 1 opens stage 1 with stride 2 and 16->24 channels: no skip there.
    bad = list(good)
    bad[1] = "skip"
    with pytest.raises(GenotypeError, match=r"layer 1 .*stride 2.*'skip'.*allowed there"):
        space.validate(Genotype("mobilenet", "-".join(bad)))
    with pytest.raises(GenotypeError, match=r"has 9 layers but .* has 10"):
        space.validate(Genotype("mobilenet", "-".join(good[:-1])))
    unknown = list(good)
    unknown[4] = "conv3x3"
    with pytest.raises(GenotypeError, match=r"layer 4 .*unknown block 'conv3x3'"):
        space.validate(Genotype("mobilenet", "-".join(unknown)))
    outside = list(good)
    outside[2] = "ir_k7_e6"
    with pytest.raises(GenotypeError, match="not one of this space's blocks"):
        space.parse("-".join(outside))
    se = list(good)
    se[0] = "ir_k3_e6_se"
    with pytest.raises(GenotypeError, match="se=true"):
        space.parse("-".join(se))
    with pytest.raises(GenotypeError, match="belongs to space 'nb201'"):
        space.validate(Genotype("nb201", "-".join(good)))
    with pytest.raises(GenotypeError):
        space.layer_specs(Genotype("mobilenet", "-".join(bad)))


def test_options_vary_per_position(space: MobileNetSpace) -> None:
    options = space.options()
    assert options[0] == (*BASE_BLOCKS, "skip")  # 16 -> 16, stride 1
    assert options[1] == BASE_BLOCKS  # 16 -> 24, stride 2
    assert options[7] == BASE_BLOCKS  # 64 -> 96, stride 1
    for slot in space.slot_specs():
        assert slot.allows_skip == (slot.stride == 1 and slot.in_channels == slot.out_channels)
    assert space.size() == math.prod(len(o) for o in options)
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    for child in (space.mutate(a, rng), space.crossover(a, b, rng)):
        space.validate(child)
    assert space.mutate(a, rng) != a
    assert space.encode(a).shape == (space.encoding_size,)


def test_se_and_hswish_variants_build() -> None:
    space = MobileNetSpace(se=True, hswish=True)
    for slot in space.slot_specs():
        assert len(slot.choices) == 4 * len(BASE_BLOCKS) + slot.allows_skip
        for name in ("ir_k3_e6_se", "ir_k5_e3_hs", "ir_k3_e1_g2_se_hs"):
            assert name in slot.choices
    spec = "-".join(["ir_k3_e1_g2_se_hs", "ir_k5_e6_hs", "ir_k3_e3_se"] * 3 + ["ir_k5_e1_se_hs"])
    genotype = space.parse(spec)
    model = space.build(genotype, num_classes=10)
    assert any(isinstance(m, SqueezeExcitation) for m in model.modules())
    assert any(isinstance(m, nn.Hardswish) for m in model.modules())
    assert isinstance(model.layers[0].se, SqueezeExcitation)
    assert isinstance(model.layers[1].se, nn.Identity)
    assert torch.isfinite(_forward(model, 32)).all()
    only_se = MobileNetSpace(se=True)
    assert "ir_k3_e6_se" in only_se.block_choices
    assert not any(c.endswith("_hs") for c in only_se.block_choices)
    with pytest.raises(GenotypeError, match="hswish=true"):
        only_se.parse(spec)


def test_fbnet_preset() -> None:
    space = MobileNetSpace(preset="fbnet")
    assert space.num_layers == 22
    assert space.input_shape == (3, 224, 224)
    assert space.stem_stride == 2 and space.head_out_channels == 1984
    specs = space.slot_specs()
    assert specs[0].input_resolution == 112 and specs[-1].output_resolution == 7
    assert specs[-1].out_channels == 352
    genotype = space.sample(np.random.default_rng(0))
    out = _forward(space.build(genotype, num_classes=1000), 224)
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "options", [{}, {"preset": "fbnet"}, {"width_mult": 0.5, "resolution": 40}]
)
def test_layer_specs_chain(options: dict) -> None:
    space = MobileNetSpace(**options)
    genotype = space.sample(np.random.default_rng(3))
    specs = space.layer_specs(genotype)
    assert [s.choice for s in specs] == space.choices(genotype)
    assert specs[0].in_channels == space.stem_out_channels
    assert specs[0].input_resolution == -(-space.resolution // space.stem_stride)
    for prev, cur in itertools.pairwise(specs):
        assert cur.in_channels == prev.out_channels
        assert cur.input_resolution == prev.output_resolution
        assert cur.input_resolution == -(-prev.input_resolution // prev.stride)
        if cur.stage != prev.stage:
            assert cur.stride == space.stages[cur.stage][1]
        else:
            assert cur.stride == 1
    for spec in specs:
        assert spec.out_channels % 8 == 0
        block = parse_choice(spec.choice)
        assert (spec.kernel, spec.expansion, spec.groups) == (
            block.kernel,
            block.expansion,
            block.groups,
        )
    infos = space.layers(genotype)
    assert [i.op == "skip" for i in infos] == [s.is_skip for s in specs]
    assert [i.channels for i in infos] == [s.out_channels for s in specs]


def test_default_chain_halves_resolution(space: MobileNetSpace) -> None:
    slots = space.slot_specs()
    assert [s.input_resolution for s in slots] == [32, 32, 16, 16, 8, 8, 4, 4, 4, 4]
    assert [s.stride for s in slots] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1]


def test_parse_choice() -> None:
    block = parse_choice("ir_k5_e1_g2_se_hs")
    assert block == BlockChoice(kernel=5, expansion=1, groups=2, se=True, hswish=True)
    assert block.name == "ir_k5_e1_g2_se_hs"
    assert parse_choice("k3_e6").name == "ir_k3_e6"
    assert parse_choice("ir_k3_e6_g1").name == "ir_k3_e6"
    assert parse_choice("skip").is_skip
    for bad in ("ir_k4_e6", "ir_k3_e0", "conv", "ir_k3_e6_hs_se", ""):
        with pytest.raises(GenotypeError):
            parse_choice(bad)


def test_blocks_residual_groups_and_shapes() -> None:
    block = make_block("ir_k3_e6", 16, 16, 1)
    assert isinstance(block, InvertedResidual) and block.use_residual
    assert block.depthwise[0].groups == 96 and block.depthwise[0].kernel_size == (3, 3)
    assert not make_block("ir_k3_e6", 16, 24, 1).use_residual
    assert not make_block("ir_k3_e6", 16, 16, 2).use_residual
    grouped = make_block("ir_k5_e1_g2", 16, 24, 2)
    assert grouped.expand[0].groups == 2 and grouped.project[0].groups == 2
    assert grouped.expand[0].out_channels == 16  # e1 keeps its 1x1 expansion conv
    assert isinstance(grouped.shuffle, ChannelShuffle)
    assert grouped.depthwise[0].kernel_size == (5, 5)
    assert grouped(torch.randn(2, 16, 9, 9)).shape == (2, 24, 5, 5)
    assert isinstance(make_block("skip", 16, 16, 1), nn.Identity)
    with pytest.raises(ValueError, match="skip needs stride 1"):
        make_block("skip", 16, 16, 2)
    with pytest.raises(ValueError, match="not divisible"):
        make_block("ir_k3_e1_g2", 15, 16, 1)


def test_channel_shuffle_interleaves() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_initialisation(space: MobileNetSpace) -> None:
    model = space.build(space.sample(np.random.default_rng(0)), num_classes=10)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    classifier = model.head.classifier
    assert classifier.weight.std() < 0.02 and torch.all(classifier.bias == 0)


def test_config_recreates_space() -> None:
    space = MobileNetSpace(preset="fbnet", width_mult=0.75, se=True, dropout=0.2, resolution=192)
    config = json.loads(json.dumps(space.config()))
    again = make_space("mobilenet", config)
    assert again.config() == space.config()
    assert again.slot_specs() == space.slot_specs()
    assert again.input_shape == (3, 192, 192)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stages": []}, "non-empty"),
        ({"stages": [[16, 1]]}, "out_channels, first_stride, num_layers"),
        ({"stages": [[0, 1, 1]]}, "positive integer"),
        ({"stages": [[16, 3, 1]]}, "1 or 2"),
        ({"width_mult": 0}, "positive"),
        ({"stem_channels": -8}, "positive integer"),
        ({"resolution": 4}, "too small for the total stride 8"),
        ({"preset": "imagenet"}, "unknown preset"),
        ({"dropout": 1.0}, r"\[0, 1\)"),
        ({"se": "yes"}, "true or false"),
    ],
)
def test_bad_options(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MobileNetSpace(**options)
