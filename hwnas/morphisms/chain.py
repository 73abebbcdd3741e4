"""Morphisms of the ``chain`` space (NASH and LEMONADE's operators on a plain CNN).

Exact: ``deepen`` (insert an identity conv-BN-ReLU: its input is a ReLU output, so the ReLU
keeps it), ``widen`` (Net2Wider: duplicate filters and divide the consumers' weights),
``add_skip`` (a 1x1 conv-BN branch whose BN has gamma = beta = 0), ``grow_kernel`` (zero-pad).
Approximate: ``remove_layer``, ``prune`` (keep the filters of largest norm), ``remove_skip``,
``shrink_kernel`` (centre crop).

Every transform is the same copy (:func:`_carry`) driven by a :class:`_Map` that says where
each child layer, node, channel and skip comes from in the parent. Node ``n`` is the output of
layer ``n`` (1-based), node 0 the input; module ``layers.{n-1}`` is layer ``n``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.morphisms.base import Morphism, Params, StateDict
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.chain import ChainLayer, ChainSpace
from hwnas.types import Genotype


def io_shape(state: StateDict) -> tuple[int, int]:
    return int(state["classifier.weight"].shape[0]), int(state["layers.0.conv.weight"].shape[1])


def _layers(space: SearchSpace, genotype: Genotype) -> tuple[ChainLayer, ...]:
    assert isinstance(space, ChainSpace)
    return space.to_layers(genotype)


def _convs(layers: tuple[ChainLayer, ...]) -> list[int]:
    return [i for i, layer in enumerate(layers, start=1) if layer.is_conv]


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))] if options else None


def _edit_child(kind: str, keys: tuple[str, ...]):
    def child(space: SearchSpace, parent: Genotype, params: Params) -> Genotype:
        assert isinstance(space, ChainSpace)
        layers = space.edit(_layers(space, parent), kind, {k: params[k] for k in keys})
        space.check_layers(layers)
        return space.from_layers(layers)

    return child


# -- proposals ------------------------------------------------------------------------------
def _propose_deepen(
    space: SearchSpace, parent: Genotype, rng: np.random.Generator
) -> Params | None:
    layers = _layers(space, parent)
    if len(layers) >= space.max_layers:  # type: ignore[attr-defined]
        return None
    return {
        "after": int(rng.integers(1, len(layers) + 1)),
        "kernel": int(rng.choice(space.kernels)),
    }  # type: ignore[attr-defined]


def _propose_width(wider: bool):
    def propose(space: SearchSpace, parent: Genotype, rng: np.random.Generator) -> Params | None:
        assert isinstance(space, ChainSpace)
        layers = _layers(space, parent)
        options = []
        for index in _convs(layers):
            width = layers[index - 1].channels
            steps = [w for w in space.widths if (w > width if wider else w < width)]
            # One or two rungs of the width ladder at a time, as Net2Wider's doubling.
            steps = steps[:2] if wider else steps[-2:]
            options += [(index, w) for w in steps]
        choice = _pick(rng, options)
        if choice is None:
            return None
        return {"layer": choice[0], "channels": choice[1], "seed": int(rng.integers(2**31))}

    return propose


def _propose_kernel(grow: bool):
    def propose(space: SearchSpace, parent: Genotype, rng: np.random.Generator) -> Params | None:
        assert isinstance(space, ChainSpace)
        layers = _layers(space, parent)
        options = [
            (index, k)
            for index in _convs(layers)
            for k in space.kernels
            if (k > layers[index - 1].kernel if grow else k < layers[index - 1].kernel)
        ]
        choice = _pick(rng, options)
        return None if choice is None else {"layer": choice[0], "kernel": choice[1]}

    return propose


def _propose_add_skip(
    space: SearchSpace, parent: Genotype, rng: np.random.Generator
) -> Params | None:
    layers = _layers(space, parent)
    options = [
        (index, source)
        for index in _convs(layers)
        for source in range(1, index)
        if source not in layers[index - 1].skips and ChainSpace.skip_allowed(layers, index, source)
    ]
    choice = _pick(rng, options)
    return None if choice is None else {"layer": choice[0], "source": choice[1]}


def _propose_remove_skip(
    space: SearchSpace, parent: Genotype, rng: np.random.Generator
) -> Params | None:
    layers = _layers(space, parent)
    options = [(i, s) for i in _convs(layers) for s in layers[i - 1].skips]
    choice = _pick(rng, options)
    return None if choice is None else {"layer": choice[0], "source": choice[1]}


def _propose_remove_layer(
    space: SearchSpace, parent: Genotype, rng: np.random.Generator
) -> Params | None:
    layers = _layers(space, parent)
    index = _pick(rng, [i for i in _convs(layers) if i > 1])  # the first conv stays
    return None if index is None else {"layer": index}


# -- the copy -------------------------------------------------------------------------------
@dataclass
class _Map:
    """Where the child's parts come from (child numbering -> parent numbering).

    ``layer``: child layer -> parent layer, None for an inserted identity layer; ``node``:
    child node -> parent node; ``channels``: child node -> parent channel of each child
    channel (-1: none), positional where not given; ``skip_alias``: a child skip from node n
    may take the parent's skip from ``skip_alias[n]`` when there is none from the mapped node.
    """

    layer: dict[int, int | None]
    node: dict[int, int]
    channels: dict[int, np.ndarray] = field(default_factory=dict)
    skip_alias: dict[int, int] = field(default_factory=dict)

    @classmethod
    def identity(cls, n_layers: int) -> _Map:
        return cls({i: i for i in range(1, n_layers + 1)}, {i: i for i in range(n_layers + 1)})


def _carry(
    space: ChainSpace,
    parent: tuple[ChainLayer, ...],
    child: tuple[ChainLayer, ...],
    parent_state: StateDict,
    fresh: StateDict,
    where: _Map,
) -> dict:
    from hwnas.morphisms import tensors as T

    in_channels = int(parent_state["layers.0.conv.weight"].shape[1])
    pch = space.node_channels(parent, in_channels)
    cch = space.node_channels(child, in_channels)
    chan: dict[int, np.ndarray] = {0: np.arange(in_channels)}
    for n in range(1, len(child) + 1):
        if n in where.channels:
            chan[n] = np.asarray(where.channels[n], dtype=int)
        elif where.layer[n] is None:
            chan[n] = chan[n - 1]  # an identity layer passes its input's channels on
        elif not child[n - 1].is_conv and where.node[n - 1] == where.node[n] - 1:
            chan[n] = chan[n - 1]  # so does a pool that pools what the parent's pooled
        else:
            chan[n] = T.positional(cch[n], pch[where.node[n]])

    def inputs(node: int, parent_node: int) -> tuple[np.ndarray, np.ndarray]:
        if where.node[node] == parent_node:
            index = chan[node]
        else:  # the parent read another node: keep what lines up
            index = T.positional(cch[node], pch[parent_node])
        return index, T.fan_in_scale(index)

    state: dict = {}
    for n, layer in enumerate(child, start=1):
        if not layer.is_conv:
            continue
        c, p = f"layers.{n - 1}", where.layer[n]
        if p is None:  # inserted identity layer
            like = fresh[f"{c}.conv.weight"]
            state[f"{c}.conv.weight"] = T.identity_conv(layer.channels, layer.kernel, like)
            state.update({f"{c}.bn.{k}": v for k, v in T.bn_identity(layer.channels, like).items()})
            state[f"{c}.bn.num_batches_tracked"] = fresh[f"{c}.bn.num_batches_tracked"].clone()
        else:
            pp = f"layers.{p - 1}"
            out = chan[n] if where.node[n] == p else T.positional(cch[n], pch[p])
            index, scale = inputs(n - 1, p - 1)
            weight = T.resize_kernel(parent_state[f"{pp}.conv.weight"], layer.kernel)
            weight = T.take_inputs(weight, index, scale)
            state[f"{c}.conv.weight"] = T.take(weight, 0, out, fresh[f"{c}.conv.weight"])
            state.update(T.take_bn(parent_state, fresh, f"{pp}.bn", f"{c}.bn", out))
        for source in layer.skips:
            cs = f"{c}.skips.n{source}"
            ps = _parent_skip(parent, p, where.node[source], where.skip_alias.get(source))
            if ps is None:  # a new branch that starts at zero
                state[f"{cs}.conv.weight"] = fresh[f"{cs}.conv.weight"].clone()
                like = fresh[f"{cs}.bn.weight"]
                state.update(
                    {f"{cs}.bn.{k}": v for k, v in T.bn_zero(layer.channels, like).items()}
                )
                state[f"{cs}.bn.num_batches_tracked"] = fresh[
                    f"{cs}.bn.num_batches_tracked"
                ].clone()
                continue
            pps = f"layers.{p - 1}.skips.n{ps}"  # type: ignore[operator]
            out = chan[n] if where.node[n] == p else T.positional(cch[n], pch[p])  # type: ignore[index]
            index, scale = inputs(source, ps)
            weight = T.take_inputs(parent_state[f"{pps}.conv.weight"], index, scale)
            state[f"{cs}.conv.weight"] = T.take(weight, 0, out, fresh[f"{cs}.conv.weight"])
            state.update(T.take_bn(parent_state, fresh, f"{pps}.bn", f"{cs}.bn", out))
    index, scale = inputs(len(child), len(parent))
    state["classifier.weight"] = T.take_inputs(parent_state["classifier.weight"], index, scale)
    state["classifier.bias"] = parent_state["classifier.bias"].clone()
    missing = set(fresh) - set(state)
    assert not missing, f"chain morphism left tensors unset: {sorted(missing)}"
    return state


def _parent_skip(
    parent: tuple[ChainLayer, ...], layer: int | None, node: int, alias: int | None
) -> int | None:
    if layer is None:
        return None
    skips = parent[layer - 1].skips
    if node in skips:
        return node
    return alias if alias is not None and alias in skips else None


# -- transforms -----------------------------------------------------------------------------
def _transform(make_map):
    def transform(
        space: SearchSpace,
        parent: Genotype,
        child: Genotype,
        parent_state: StateDict,
        fresh: StateDict,
        params: Params,
    ) -> dict:
        assert isinstance(space, ChainSpace)
        p_layers, c_layers = space.to_layers(parent), space.to_layers(child)
        where = make_map(p_layers, c_layers, parent_state, params)
        return _carry(space, p_layers, c_layers, parent_state, fresh, where)

    return transform


def _map_same(p_layers, c_layers, state, params) -> _Map:
    return _Map.identity(len(c_layers))


def _map_deepen(p_layers, c_layers, state, params) -> _Map:
    after = params["after"]
    layer = {i: (i if i <= after else i - 1) for i in range(1, len(c_layers) + 1)}
    layer[after + 1] = None
    node = {i: (i if i <= after else i - 1) for i in range(len(c_layers) + 1)}
    return _Map(layer, node)


def _map_widen(p_layers, c_layers, state, params) -> _Map:
    from hwnas.morphisms import tensors as T

    index = params["layer"]
    parent_width = p_layers[index - 1].channels
    rng = np.random.default_rng(params["seed"])
    where = _Map.identity(len(c_layers))
    where.channels[index] = T.duplicate(parent_width, params["channels"], rng)
    return where


def _map_prune(p_layers, c_layers, state, params) -> _Map:
    from hwnas.morphisms import tensors as T

    index = params["layer"]
    prefix = f"layers.{index - 1}"
    # A filter's effective size after its BatchNorm: |gamma| / sqrt(var + eps) * ||w||.
    scale = (
        state[f"{prefix}.bn.weight"].abs() / (state[f"{prefix}.bn.running_var"] + T.BN_EPS).sqrt()
    )
    scores = T.channel_norms(state[f"{prefix}.conv.weight"]) * scale.detach().cpu().numpy()
    where = _Map.identity(len(c_layers))
    where.channels[index] = T.keep_largest(scores, params["channels"])
    return where


def _map_remove(p_layers, c_layers, state, params) -> _Map:
    removed = params["layer"]
    layer = {i: (i if i < removed else i + 1) for i in range(1, len(c_layers) + 1)}
    node = {i: (i if i < removed else i + 1) for i in range(len(c_layers) + 1)}
    # Skips that read the removed node read the node before it now.
    return _Map(layer, node, skip_alias={removed - 1: removed})


MORPHISMS: Mapping[str, Morphism] = {
    m.name: m
    for m in (
        Morphism(
            "deepen",
            True,
            "insert an identity conv-BN-ReLU after a node",
            _propose_deepen,
            _edit_child("insert_conv", ("after", "kernel")),
            _transform(_map_deepen),
        ),
        Morphism(
            "widen",
            True,
            "Net2Wider: more filters in a conv, duplicated, consumers rescaled",
            _propose_width(wider=True),
            _edit_child("set_channels", ("layer", "channels")),
            _transform(_map_widen),
        ),
        Morphism(
            "add_skip",
            True,
            "a 1x1 conv-BN skip branch that starts at zero",
            _propose_add_skip,
            _edit_child("add_skip", ("layer", "source")),
            _transform(_map_same),
        ),
        Morphism(
            "grow_kernel",
            True,
            "a larger kernel, zero-padded",
            _propose_kernel(grow=True),
            _edit_child("set_kernel", ("layer", "kernel")),
            _transform(_map_same),
        ),
        Morphism(
            "remove_layer",
            False,
            "drop a conv (not the first); its consumers read its input",
            _propose_remove_layer,
            _edit_child("remove_layer", ("layer",)),
            _transform(_map_remove),
        ),
        Morphism(
            "prune",
            False,
            "fewer filters in a conv, keeping those of largest norm",
            _propose_width(wider=False),
            _edit_child("set_channels", ("layer", "channels")),
            _transform(_map_prune),
        ),
        Morphism(
            "remove_skip",
            False,
            "drop a skip branch",
            _propose_remove_skip,
            _edit_child("remove_skip", ("layer", "source")),
            _transform(_map_same),
        ),
        Morphism(
            "shrink_kernel",
            False,
            "a smaller kernel, centre-cropped",
            _propose_kernel(grow=False),
            _edit_child("set_kernel", ("layer", "kernel")),
            _transform(_map_same),
        ),
    )
}
