"""Morphisms of the ``mobilenet`` space: its slots are fixed, so they act within a slot.

Exact: ``insert_block`` (a skip slot gets an inverted-residual block whose projection BN has
gamma = beta = 0, so the block adds zero to its residual), ``widen`` (a larger expansion by
Net2Wider on the hidden channels, squeeze-excitation included), ``grow_kernel`` (zero-pad the
depthwise kernel) and ``add_se`` (a squeeze-excitation gate fixed at 1: fc2 = 0, bias 3, and
hardsigmoid(3) = 1). Approximate: ``remove_block`` (back to skip), ``prune`` (a smaller
expansion keeping the hidden channels of largest norm), ``shrink_kernel``, ``remove_se``.
Grouped blocks (``_g2``) change kernel or become skips; their width stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from hwnas.morphisms.base import Morphism, Params, StateDict
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.mobilenet import SKIP, MobileNetSpace
from hwnas.spaces.mobilenet_spec import BlockChoice, make_divisible, parse_choice
from hwnas.types import Genotype


def io_shape(state: StateDict) -> tuple[int, int]:
    return int(state["head.classifier.weight"].shape[0]), int(state["stem.0.weight"].shape[1])


def _choices(space: SearchSpace, genotype: Genotype) -> list[str]:
    assert isinstance(space, MobileNetSpace)
    return space.choices(genotype)


def _variants(space: SearchSpace, genotype: Genotype, test) -> list[tuple[int, str]]:
    """``(layer, new block)`` for every slot whose block ``test(old, new)`` accepts."""
    assert isinstance(space, MobileNetSpace)
    out = []
    for slot, old in zip(space.slot_specs(), _choices(space, genotype)):
        for new in slot.choices:
            if new != old and test(parse_choice(old), parse_choice(new)):
                out.append((slot.index, new))
    return out


def _same_but(old: BlockChoice, new: BlockChoice, **changed: object) -> bool:
    if old.is_skip or new.is_skip:
        return False
    return replace(old, **changed) == new  # type: ignore[arg-type]


def _proposer(test, with_seed: bool = False):
    def propose(space: SearchSpace, parent: Genotype, rng: np.random.Generator) -> Params | None:
        options = _variants(space, parent, test)
        if not options:
            return None
        layer, block = options[int(rng.integers(len(options)))]
        params: Params = {"layer": layer, "block": block}
        if with_seed:
            params["seed"] = int(rng.integers(2**31))
        return params

    return propose


def _child(space: SearchSpace, parent: Genotype, params: Params) -> Genotype:
    assert isinstance(space, MobileNetSpace)
    choices = _choices(space, parent)
    choices[params["layer"]] = params["block"]
    return space.parse(space.to_spec(choices))


# -- weights --------------------------------------------------------------------------------
def _transform(carry_layer):
    def transform(
        space: SearchSpace,
        parent: Genotype,
        child: Genotype,
        parent_state: StateDict,
        fresh: StateDict,
        params: Params,
    ) -> dict:
        prefix = f"layers.{params['layer']}."
        state = {k: v.clone() for k, v in parent_state.items() if not k.startswith(prefix)}
        old = parse_choice(_choices(space, parent)[params["layer"]])
        state.update(
            carry_layer(prefix, old, parse_choice(params["block"]), parent_state, fresh, params)
        )
        missing, extra = set(fresh) - set(state), set(state) - set(fresh)
        assert not missing and not extra, f"mobilenet morphism: {sorted(missing ^ extra)}"
        return state

    return transform


def _fresh_layer(prefix: str, fresh: StateDict) -> dict:
    return {k: v.clone() for k, v in fresh.items() if k.startswith(prefix)}


def _insert(prefix, old, new, parent_state, fresh, params) -> dict:
    from hwnas.morphisms import tensors as T

    out = _fresh_layer(prefix, fresh)
    like = out[f"{prefix}project.1.weight"]
    zero = T.bn_zero(len(like), like)
    out[f"{prefix}project.1.weight"] = zero["weight"]
    out[f"{prefix}project.1.bias"] = zero["bias"]
    return out


def _remove(prefix, old, new, parent_state, fresh, params) -> dict:
    return {}


def _hidden_map(old: BlockChoice, new: BlockChoice, parent_state, prefix, params) -> np.ndarray:
    from hwnas.morphisms import tensors as T

    hidden = parent_state[f"{prefix}expand.0.weight"].shape[0]
    target = hidden // old.expansion * new.expansion
    if target > hidden:
        return T.duplicate(hidden, target, np.random.default_rng(params.get("seed", 0)))
    if target < hidden:
        scale = (
            parent_state[f"{prefix}expand.1.weight"].abs()
            / (parent_state[f"{prefix}expand.1.running_var"] + T.BN_EPS).sqrt()
        )
        scores = T.channel_norms(parent_state[f"{prefix}expand.0.weight"]) * scale.numpy()
        return T.keep_largest(scores, target)
    return np.arange(hidden)


def _reshape_block(prefix, old, new, parent_state, fresh, params) -> dict:
    """Same block with another expansion, kernel or squeeze-excitation."""
    from hwnas.morphisms import tensors as T

    out: dict = {}
    hidden = _hidden_map(old, new, parent_state, prefix, params)
    ones = T.fan_in_scale(hidden)
    for part in ("expand", "depthwise"):
        weight = parent_state[f"{prefix}{part}.0.weight"]
        if part == "depthwise":
            weight = T.resize_kernel(weight, new.kernel)
        out[f"{prefix}{part}.0.weight"] = T.take(
            weight, 0, hidden, fresh[f"{prefix}{part}.0.weight"]
        )
        out.update(T.take_bn(parent_state, fresh, f"{prefix}{part}.1", f"{prefix}{part}.1", hidden))
    project = parent_state[f"{prefix}project.0.weight"]
    if not np.array_equal(hidden, np.arange(len(hidden))):
        project = T.take_inputs(project, hidden, ones)  # (grouped blocks never get here)
    out[f"{prefix}project.0.weight"] = project.clone()
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        out[f"{prefix}project.1.{name}"] = parent_state[f"{prefix}project.1.{name}"].clone()
    if new.se and old.se:
        out.update(_carry_se(prefix, hidden, parent_state, fresh, params))
    elif new.se:  # a gate fixed at hardsigmoid(3) = 1
        out.update(_fresh_layer(f"{prefix}se.", fresh))
        out[f"{prefix}se.fc2.weight"].zero_()
        out[f"{prefix}se.fc2.bias"].fill_(3.0)
    return out


def _carry_se(prefix, hidden, parent_state, fresh, params) -> dict:
    from hwnas.morphisms import tensors as T

    fc1, fc2 = parent_state[f"{prefix}se.fc1.weight"], parent_state[f"{prefix}se.fc2.weight"]
    squeeze_old = fc1.shape[0]
    squeeze_new = fresh[f"{prefix}se.fc1.weight"].shape[0]
    if squeeze_new >= squeeze_old:
        rng = np.random.default_rng(params.get("seed", 0) + 1)
        squeeze = T.duplicate(squeeze_old, squeeze_new, rng)
    else:
        squeeze = T.keep_largest(T.channel_norms(fc1), squeeze_new)
    fc1 = T.take_inputs(fc1, hidden, T.fan_in_scale(hidden))
    fc2 = T.take_inputs(fc2, squeeze, T.fan_in_scale(squeeze))
    return {
        f"{prefix}se.fc1.weight": T.take(fc1, 0, squeeze, fresh[f"{prefix}se.fc1.weight"]),
        f"{prefix}se.fc1.bias": T.take(
            parent_state[f"{prefix}se.fc1.bias"], 0, squeeze, fresh[f"{prefix}se.fc1.bias"]
        ),
        f"{prefix}se.fc2.weight": T.take(fc2, 0, hidden, fresh[f"{prefix}se.fc2.weight"]),
        f"{prefix}se.fc2.bias": T.take(
            parent_state[f"{prefix}se.fc2.bias"], 0, hidden, fresh[f"{prefix}se.fc2.bias"]
        ),
    }


def _morphism(name, exact, summary, test, carry, seed=False) -> Morphism:
    return Morphism(name, exact, summary, _proposer(test, seed), _child, _transform(carry))


def _grouped(old: BlockChoice) -> bool:
    return old.groups > 1


MORPHISMS: Mapping[str, Morphism] = {
    m.name: m
    for m in (
        _morphism(
            "insert_block",
            True,
            "a skip slot gets a block that adds zero to its residual",
            lambda old, new: old.is_skip and not new.is_skip,
            _insert,
        ),
        _morphism(
            "widen",
            True,
            "Net2Wider: a larger expansion, hidden channels duplicated",
            lambda old, new: (
                not _grouped(old)
                and new.expansion > old.expansion
                and _same_but(old, new, expansion=new.expansion)
            ),
            _reshape_block,
            seed=True,
        ),
        _morphism(
            "grow_kernel",
            True,
            "a larger depthwise kernel, zero-padded",
            lambda old, new: new.kernel > old.kernel and _same_but(old, new, kernel=new.kernel),
            _reshape_block,
        ),
        _morphism(
            "add_se",
            True,
            "a squeeze-excitation gate that starts at 1",
            lambda old, new: not old.se and _same_but(old, new, se=True),
            _reshape_block,
        ),
        _morphism(
            "remove_block",
            False,
            "a block becomes a skip",
            lambda old, new: not old.is_skip and new.is_skip,
            _remove,
        ),
        _morphism(
            "prune",
            False,
            "a smaller expansion, keeping the hidden channels of largest norm",
            lambda old, new: (
                not _grouped(old)
                and new.expansion < old.expansion
                and _same_but(old, new, expansion=new.expansion)
            ),
            _reshape_block,
        ),
        _morphism(
            "shrink_kernel",
            False,
            "a smaller depthwise kernel, centre-cropped",
            lambda old, new: new.kernel < old.kernel and _same_but(old, new, kernel=new.kernel),
            _reshape_block,
        ),
        _morphism(
            "remove_se",
            False,
            "drop a squeeze-excitation gate",
            lambda old, new: old.se and _same_but(old, new, se=False),
            _reshape_block,
        ),
    )
}

__all__ = ["MORPHISMS", "SKIP", "io_shape", "make_divisible"]
