"""Network morphisms of chain and mobilenet on real torch networks.

Exact morphisms must keep the function (eval mode, so BatchNorm running statistics matter;
they are randomised here so that an identity BN is not an accident), approximate ones must
give valid children that load strictly and train.
"""

import json

import numpy as np
import pytest
import torch

from hwnas.morphisms import apply_steps, get_morphism, morphisms_for, propose
from hwnas.spaces import make_space
from hwnas.training.inherit import inherit

CHAIN = make_space("chain", {"resolution": 16, "in_channels": 1})
MOBILENET = make_space(
    "mobilenet",
    {"stages": [[16, 1, 1], [24, 2, 2], [24, 1, 2]], "se": True, "hswish": True, "resolution": 16},
)
SPACES = {"chain": CHAIN, "mobilenet": MOBILENET}
EXACT = [(s, n) for s in SPACES for n, m in morphisms_for(SPACES[s]).items() if m.exact]
APPROXIMATE = [(s, n) for s in SPACES for n, m in morphisms_for(SPACES[s]).items() if not m.exact]


pytestmark = pytest.mark.usefixtures("one_thread")


def _trained_like(space, genotype, seed):
    """A network with non-trivial BatchNorm statistics and a classifier of unit scale."""
    torch.manual_seed(seed)
    model = space.build(genotype, num_classes=10, in_channels=1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
            elif isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, 0.5)
    return model.eval()


def _parents(space, n, rng):
    """Random parents, some changed by a few mutations so that skips and pools occur."""
    out = []
    for _ in range(n):
        g = space.sample(rng)
        for _ in range(int(rng.integers(0, 4))):
            g = space.mutate(g, rng)
        if space is MOBILENET:  # skip slots, so that blocks can be inserted
            choices = [
                "skip" if slot.allows_skip and rng.random() < 0.5 else choice
                for slot, choice in zip(space.slot_specs(), space.choices(g))
            ]
            g = space.parse(space.to_spec(choices))
        out.append(g)
    return out


def _max_relative_gap(a, b):
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


@pytest.mark.parametrize(("space_name", "name"), EXACT)
def test_exact_morphisms_keep_the_function(space_name, name):
    space = SPACES[space_name]
    morphism = get_morphism(space, name)
    rng = np.random.default_rng(1)
    x = torch.randn(6, 1, 16, 16)
    applied = 0
    for i, parent in enumerate(_parents(space, 8, rng)):
        params = morphism.propose(space, parent, rng)
        if params is None:
            continue
        model = _trained_like(space, parent, i)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        child_genotype, child_state = morphism.apply(space, parent, state, rng, params)
        space.validate(child_genotype)
        assert child_genotype != parent
        child = space.build(child_genotype, num_classes=10, in_channels=1)
        child.load_state_dict(child_state, strict=True)
        child.eval()
        with torch.no_grad():
            gap = _max_relative_gap(child(x), model(x))
        assert gap < 1e-5, f"{name} on {parent.spec} with {params}: outputs differ by {gap}"
        # Pure: the parent's tensors are untouched.
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
        json.dumps(morphism.describe(params))  # the description is JSON
        applied += 1
    assert applied >= 2, f"{name} applied to only {applied} random parents"


@pytest.mark.parametrize(("space_name", "name"), APPROXIMATE)
def test_approximate_morphisms_give_valid_trainable_children(space_name, name):
    space = SPACES[space_name]
    morphism = get_morphism(space, name)
    rng = np.random.default_rng(2)
    x = torch.randn(8, 1, 16, 16)
    labels = torch.arange(8) % 10
    applied = 0
    for i, parent in enumerate(_parents(space, 6, rng)):
        params = morphism.propose(space, parent, rng)
        if params is None:
            continue
        model = _trained_like(space, parent, i)
        child_genotype, child_state = morphism.apply(space, parent, model.state_dict(), rng, params)
        space.validate(child_genotype)
        child = space.build(child_genotype, num_classes=10, in_channels=1)
        child.load_state_dict(child_state, strict=True)
        with torch.no_grad():
            child.eval()
            before = child(x)
            # Approximate, but the network is still its parent's, not a fresh one.
            assert torch.isfinite(before).all()
        child.train()
        optimizer = torch.optim.SGD(child.parameters(), lr=0.05)
        loss = torch.nn.functional.cross_entropy(child(x), labels)
        loss.backward()
        optimizer.step()
        child.eval()
        with torch.no_grad():
            assert not torch.equal(child(x), before)
        applied += 1
    assert applied >= 2, f"{name} applied to only {applied} random parents"


def test_net2wider_duplicates_filters_and_rescales_consumers():
    parent = CHAIN.parse("k3c8-k3c8-k3c16")
    morphism = get_morphism(CHAIN, "widen")
    params = {"layer": 2, "channels": 16, "seed": 5}
    model = _trained_like(CHAIN, parent, 0)
    child, state = morphism.apply(
        CHAIN, parent, model.state_dict(), np.random.default_rng(0), params
    )
    assert child.spec == "k3c8-k3c16-k3c16"
    old, new = model.state_dict()["layers.1.conv.weight"], state["layers.1.conv.weight"]
    assert torch.equal(new[:8], old)  # the original filters first
    for j in range(8, 16):  # then copies of some of them
        source = next(i for i in range(8) if torch.equal(new[j], old[i]))
        count = sum(torch.equal(new[k], old[source]) for k in range(16))
        consumer_old = model.state_dict()["layers.2.conv.weight"][:, source]
        assert torch.allclose(state["layers.2.conv.weight"][:, j], consumer_old / count)


def test_deepen_inserts_an_identity_layer_and_renumbers_skips():
    parent = CHAIN.parse("k3c8-k3c8-k3c8+1+2")
    child, state = get_morphism(CHAIN, "deepen").apply(
        CHAIN, parent, _trained_like(CHAIN, parent, 0).state_dict(), np.random.default_rng(0),
        {"after": 1, "kernel": 3},
    )  # fmt: skip
    assert child.spec == "k3c8-k3c8-k3c8-k3c8+1+3"
    weight = state["layers.1.conv.weight"]
    assert torch.equal(weight[:, :, 1, 1], torch.eye(8)) and weight.abs().sum() == 8


def test_transfer_kind_morphism_matches_the_pure_function():
    rng = np.random.default_rng(3)
    for space in SPACES.values():
        parent = _parents(space, 1, rng)[0]
        child_genotype, steps = propose(space, parent, rng, steps=3)
        transfer = {"kind": "morphism", "steps": steps, "seed": 7}
        model = _trained_like(space, parent, 1)
        torch.manual_seed(0)
        child = space.build(child_genotype, num_classes=10, in_channels=1)
        fresh = {k: v.clone() for k, v in child.state_dict().items()}
        report = inherit(
            child, model.state_dict(), transfer=json.loads(json.dumps(transfer)),
            parent_genotype=parent, child_genotype=child_genotype, space=space,
        )  # fmt: skip
        assert report.kind == "morphism" and report.notes["morphisms"] == [s["name"] for s in steps]
        _, expected = apply_steps(space, parent, model.state_dict(), steps, seed=7, fresh=fresh)
        assert all(torch.equal(child.state_dict()[k], v) for k, v in expected.items())
        x = torch.randn(4, 1, 16, 16)
        with torch.no_grad():
            gap = _max_relative_gap(child.eval()(x), model(x))
        assert (gap < 1e-5) == report.notes["exact"] or not report.notes["exact"]


def test_a_transfer_that_does_not_lead_to_the_candidate_is_refused():
    parent = CHAIN.parse("k3c8-k3c8")
    other = CHAIN.parse("k3c8-k3c16")
    transfer = {
        "kind": "morphism",
        "steps": [{"name": "grow_kernel", "params": {"layer": 2, "kernel": 5}}],
    }
    with pytest.raises(ValueError, match="not into the candidate"):
        inherit(
            CHAIN.build(other, num_classes=10, in_channels=1),
            _trained_like(CHAIN, parent, 0).state_dict(),
            transfer=transfer, parent_genotype=parent, child_genotype=other, space=CHAIN,
        )  # fmt: skip


def test_morphisms_only_where_they_apply():
    # A one-layer network at the layer limit: nothing to remove, nowhere to grow.
    tiny = make_space("chain", {"max_layers": 1, "widths": [8], "kernels": [3]})
    assert propose(tiny, tiny.parse("k3c8"), np.random.default_rng(0)) is None
    # mobilenet: a skip slot can only take a block, not lose one.
    names = morphisms_for(MOBILENET)
    genotype = MOBILENET.parse("ir_k3_e1-ir_k3_e3-ir_k3_e3-skip-skip")
    assert names["insert_block"].propose(MOBILENET, genotype, np.random.default_rng(0))[
        "layer"
    ] in (3, 4)
