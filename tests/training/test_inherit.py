"""Weight inheritance between real mobilenet networks, and weights files (safetensors)."""

import pytest
import torch

from hwnas.errors import ConfigError, RunError
from hwnas.spaces import make_space
from hwnas.training.inherit import TRANSFERS, inherit
from hwnas.training.weights import load_weights, read_metadata, save_weights

SPACE = make_space("mobilenet", {"stages": [[16, 1, 1], [24, 2, 2], [32, 2, 1]]})
PARENT = SPACE.parse("ir_k3_e1-ir_k3_e3-ir_k3_e3-ir_k3_e6")
# Layer 1 changes kernel (its depthwise conv cannot be copied), layer 2 becomes a skip
# (no tensors), layer 3 changes expansion (every tensor of it changes shape).
CHILD = SPACE.parse("ir_k3_e1-ir_k5_e3-skip-ir_k3_e3")


def _net(genotype, seed):
    torch.manual_seed(seed)
    return SPACE.build(genotype, num_classes=10, in_channels=1)


def test_shape_match_copies_exactly_the_tensors_whose_shapes_match():
    parent_state = {k: v + 1.0 if v.is_floating_point() else v for k, v in
                    _net(PARENT, 0).state_dict().items()}  # fmt: skip
    child = _net(CHILD, 1)
    fresh = {k: v.clone() for k, v in child.state_dict().items()}
    report = inherit(child, parent_state, transfer={"kind": "shape_match"})
    after = child.state_dict()
    copied = [k for k in after if k in parent_state and parent_state[k].shape == after[k].shape]
    assert report.kind == "shape_match" and report.copied == len(copied)
    assert report.copied + len(report.initialised) == len(after)
    for k in copied:
        assert torch.equal(after[k], parent_state[k]), k
    for k in report.initialised:
        assert torch.equal(after[k], fresh[k]), k  # left as initialised
    # What matched, by construction of the two genotypes:
    assert "stem.0.weight" in copied and "head.classifier.weight" in copied
    assert "layers.1.expand.0.weight" in copied and "layers.1.project.0.weight" in copied
    assert "layers.1.depthwise.0.weight" in report.initialised  # 3x3 -> 5x5
    assert "layers.3.expand.0.weight" in report.initialised  # e6 -> e3
    assert report.copied_elements == sum(after[k].numel() for k in copied)


def test_a_parent_without_transfer_defaults_to_shape_match():
    report = inherit(_net(CHILD, 1), _net(PARENT, 0).state_dict(), transfer=None)
    assert report.kind == "shape_match" and report.copied > 0


def test_continue_loads_everything_and_checks_the_genotype():
    parent = _net(PARENT, 0)
    child = _net(PARENT, 1)
    report = inherit(
        child, parent.state_dict(), transfer={"kind": "continue"},
        parent_genotype=PARENT, child_genotype=PARENT,
    )  # fmt: skip
    assert report.kind == "continue" and not report.initialised
    assert all(torch.equal(child.state_dict()[k], v) for k, v in parent.state_dict().items())
    with pytest.raises(ValueError, match="needs the parent's genotype"):
        inherit(child, parent.state_dict(), transfer={"kind": "continue"},
                parent_genotype=PARENT, child_genotype=CHILD)  # fmt: skip
    with pytest.raises(ValueError, match="do not fit"):
        inherit(_net(CHILD, 1), parent.state_dict(), transfer={"kind": "continue"})


def test_unknown_transfer_kinds_list_the_registered_ones():
    assert {"shape_match", "continue"} <= set(TRANSFERS.names())
    with pytest.raises(ConfigError, match="choose one of: shape_match, continue"):
        inherit(_net(CHILD, 1), {}, transfer={"kind": "widen"})


def test_weights_round_trip_with_metadata(tmp_path):
    net = _net(PARENT, 0)
    path = save_weights(
        tmp_path / "w" / "trial-00003.safetensors",
        net.state_dict(),
        {"genotype": PARENT.to_json(), "epochs": 2.5},
    )
    state, meta = load_weights(path)
    assert set(state) == set(net.state_dict())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert meta == {"genotype": PARENT.to_json(), "epochs": 2.5} == read_metadata(path)
    assert not list(path.parent.glob("*.tmp"))
    # A safetensors file: an 8-byte little-endian header length, then a JSON header; no pickle.
    raw = path.read_bytes()
    assert raw[8:9] == b"{" and b"\x80\x04" not in raw[:2]
    with pytest.raises(RunError, match="does not exist"):
        load_weights(tmp_path / "missing.safetensors")
