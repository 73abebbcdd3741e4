"""The growing chain space: canonical text, validation, operators, encoding and networks."""

import json

import numpy as np
import pytest
import torch

from hwnas.errors import ConfigError, GenotypeError
from hwnas.spaces import make_space
from hwnas.types import Genotype

SPACE = make_space("chain")


pytestmark = pytest.mark.usefixtures("one_thread")


def test_text_and_json_forms_round_trip_to_one_canonical_form():
    g = SPACE.parse(" K3C16 - k3c16+1 - pool - k5c32 - k1c32+4 ")
    assert g == Genotype("chain", "k3c16-k3c16+1-pool-k5c32-k1c32+4")
    layers = SPACE.layer_list(g)
    assert layers[1] == {"op": "conv", "kernel": 3, "channels": 16, "skips": [1]}
    assert layers[2] == {"op": "pool"}
    assert SPACE.parse(json.dumps(layers)) == g
    assert SPACE.parse("k3c16-k3c16-k3c16+2+1").spec == "k3c16-k3c16-k3c16+1+2"  # skips sorted
    SPACE.validate(g)
    with pytest.raises(GenotypeError, match="canonical"):
        SPACE.validate(Genotype("chain", "k3c16-k3c16-k3c16+2+1"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pool-k3c16", "first layer must be a conv"),
        ("k3c17", "17 channels are not allowed; widths: 8, 16"),
        ("k4c16", "kernel 4 is not allowed"),
        ("k3c16+1", "first layer cannot take skips"),
        ("k3c16-pool-k3c16+1", "no skip from node 1"),
        ("k3c16-k3c16+2", "no skip from node 2"),
        ("k3c16-" + "-".join(["pool"] * 4), "at most 3"),
        ("-".join(["k3c16"] * 13), "at most 12"),
        ("k3c16-conv", "'conv' is not a layer"),
        ('[{"op": "conv", "kernel": 3}]', "needs integer 'kernel' and 'channels'"),
        ('[{"op": "dense"}]', "'op' must be 'conv' or 'pool'"),
        ("[oops", "cannot read the layer list as JSON"),
        ("", "not a layer"),
    ],
)
def test_invalid_genotypes_say_what_to_change(spec, message):
    with pytest.raises(GenotypeError, match=message):
        SPACE.parse(spec)


def test_bad_space_options_are_config_errors():
    with pytest.raises(ConfigError, match="kernels must be odd"):
        make_space("chain", {"kernels": [2, 3]})
    with pytest.raises(ConfigError, match="max_pools <= 3"):
        make_space("chain", {"resolution": 8, "max_pools": 4})
    with pytest.raises(ConfigError, match="no option depth"):
        make_space("chain", {"depth": 3})


def test_operators_stay_in_the_space_and_the_space_is_unbounded():
    rng = np.random.default_rng(0)
    assert SPACE.size() is None
    assert make_space("chain", SPACE.config()).config() == SPACE.config()
    depths = set()
    for _ in range(60):
        a, b = SPACE.sample(rng), SPACE.sample(rng)
        SPACE.validate(a)
        assert 2 <= sum(layer["op"] == "conv" for layer in SPACE.layer_list(a)) <= 4
        child = a
        for _ in range(8):
            nxt = SPACE.mutate(child, rng)
            assert nxt != child
            SPACE.validate(nxt)
            child = nxt
        depths.add(len(SPACE.layer_list(child)))
        SPACE.validate(SPACE.crossover(a, child, rng))
        SPACE.validate(SPACE.crossover(child, b, rng))
    assert len(depths) >= 4  # mutations deepen and shrink networks


def test_edits_keep_skips_pointing_at_the_same_tensors():
    layers = SPACE.to_layers(SPACE.parse("k3c16-k3c16-k3c16+1+2"))
    deeper = SPACE.edit(layers, "insert_conv", {"after": 1, "kernel": 1})
    assert SPACE.from_layers(deeper).spec == "k3c16-k1c16-k3c16-k3c16+1+3"
    shorter = SPACE.edit(layers, "remove_layer", {"layer": 2})
    assert SPACE.from_layers(shorter).spec == "k3c16-k3c16+1"  # the skip from 2 reads node 1
    pooled = SPACE.edit(layers, "insert_pool", {"after": 2})
    assert SPACE.from_layers(pooled).spec == "k3c16-k3c16-pool-k3c16"  # skips across a pool go


def test_encoding_is_fixed_length_and_tells_networks_apart():
    rng = np.random.default_rng(1)
    vectors = {SPACE.sample(rng).spec: None for _ in range(30)}
    encoded = [SPACE.encode(SPACE.parse(s)) for s in vectors]
    assert all(v.shape == (SPACE.encoding_size,) and np.isfinite(v).all() for v in encoded)
    assert len({v.tobytes() for v in encoded}) == len(encoded)
    full = SPACE.parse("-".join(["k5c64"] * 12))
    assert SPACE.encode(full).max() <= 1.0


def test_network_has_the_layers_and_skips_of_its_genotype():
    g = SPACE.parse("k3c8-k1c16+1-pool-k5c8")
    model = SPACE.build(g, num_classes=10, in_channels=1)
    expected = (
        (1 * 8 * 9 + 2 * 8)  # k3c8 + BN
        + (8 * 16 + 2 * 16) + (8 * 16 + 2 * 16)  # k1c16 + BN, skip from node 1: 1x1 conv + BN
        + (16 * 8 * 25 + 2 * 8)  # k5c8 + BN
        + (8 * 10 + 10)  # classifier
    )  # fmt: skip
    assert sum(p.numel() for p in model.parameters()) == expected
    assert set(model.layers[1].skips) == {"n1"}
    model.eval()
    x = torch.randn(2, 1, 16, 16)
    out = model(x)
    assert out.shape == (2, 10)
    with torch.no_grad():  # the skip branch is really used
        model.layers[1].skips["n1"].bn.bias.add_(1.0)
    assert not torch.allclose(model(x), out)
    assert [i.op for i in SPACE.layers(g)] == ["conv", "conv", "maxpool", "conv"]


def test_spaces_command_lists_chain_as_unbounded():
    from typer.testing import CliRunner

    from hwnas.cli import app

    out = CliRunner().invoke(app, ["spaces"]).stdout
    assert "chain" in out and "unbounded" in out
