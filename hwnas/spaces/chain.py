"""A growing chain of conv-BN-ReLU layers, max-pools and skip connections (LEMONADE's setting).

Unlike the other spaces the depth is not fixed: network morphisms insert and remove layers,
widen and narrow them, change kernels and add or drop skip connections, up to ``max_layers``.

The network is ``layers -> global average pool -> linear``. Nodes are numbered: node 0 is the
input image, node ``i`` the output of layer ``i`` (1-based). A layer is

- ``k<kernel>c<channels>``: ``kxk`` conv (stride 1, same padding, no bias) -> BN, plus one
  1x1 conv -> BN projection per skip source, summed, then ReLU. ``k3c32+1+3`` takes skips from
  nodes 1 and 3; a skip's source must be an earlier node (not the input) at the same
  resolution, i.e. with no pool between it and the layer. The first layer is always a conv.
- ``pool``: 2x2 max-pool with stride 2 (halves the resolution, keeps the channels).

Canonical text: the layers joined by ``-``, skips ascending, e.g. ``k3c16-k3c16+1-pool-k5c32``.
:meth:`ChainSpace.parse` also reads a JSON layer list, e.g.
``[{"op": "conv", "kernel": 3, "channels": 16}, {"op": "pool"}]`` (what :meth:`to_layers`
gives). Only :meth:`ChainSpace.build` needs torch; the modules are defined on first use.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hwnas.errors import GenotypeError
from hwnas.spaces.base import LayerInfo, SearchSpace
from hwnas.types import Genotype

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CONV", "POOL", "ChainLayer", "ChainSpace"]

CONV = "conv"
POOL = "pool"
_CONV_RE = re.compile(r"k(\d+)c(\d+)((?:\+\d+)*)")
_FORM = "'pool' or 'k<kernel>c<channels>[+<skip source>...]', e.g. k3c16+1"
_FEATURES_PER_LAYER = 5


@dataclass(frozen=True)
class ChainLayer:
    """One layer: a conv (kernel, output channels, skip sources) or a pool."""

    op: str
    kernel: int = 0
    channels: int = 0
    skips: tuple[int, ...] = ()

    @property
    def is_conv(self) -> bool:
        return self.op == CONV

    def token(self) -> str:
        if not self.is_conv:
            return POOL
        return f"k{self.kernel}c{self.channels}" + "".join(f"+{s}" for s in self.skips)

    def to_json(self) -> dict[str, Any]:
        if not self.is_conv:
            return {"op": POOL}
        return {
            "op": CONV,
            "kernel": self.kernel,
            "channels": self.channels,
            "skips": list(self.skips),
        }


def conv(kernel: int, channels: int, skips: Sequence[int] = ()) -> ChainLayer:
    return ChainLayer(CONV, kernel, channels, tuple(sorted(set(skips))))


def pool() -> ChainLayer:
    return ChainLayer(POOL)


def _positive_ints(name: str, values: Any) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must hold positive integers, got {v!r}")
        out.append(v)
    return tuple(sorted(set(out)))


class ChainSpace(SearchSpace):
    """Plain CNNs of unbounded depth (see the module docstring).

    ``kernels`` and ``widths`` are the allowed kernel sizes (odd) and output channels of a conv;
    a network has at most ``max_layers`` layers (pools included) and ``max_pools`` pools.
    ``resolution`` is the input size the space is designed for (it bounds ``max_pools``).
    """

    name: ClassVar[str] = "chain"

    def __init__(
        self,
        *,
        kernels: Sequence[int] = (1, 3, 5),
        widths: Sequence[int] = (8, 16, 24, 32, 48, 64),
        max_layers: int = 12,
        max_pools: int = 3,
        resolution: int = 32,
        in_channels: int = 3,
    ) -> None:
        self.kernels = _positive_ints("kernels", kernels)
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f"kernels must be odd (same padding), got {list(self.kernels)}")
        self.widths = _positive_ints("widths", widths)
        for name, value in (
            ("max_layers", max_layers),
            ("resolution", resolution),
            ("in_channels", in_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(max_pools, bool) or not isinstance(max_pools, int) or max_pools < 0:
            raise ValueError(f"max_pools must be a non-negative integer, got {max_pools!r}")
        if resolution >> max_pools < 1:
            raise ValueError(
                f"resolution {resolution} cannot take {max_pools} pools; use max_pools <= "
                f"{int(math.log2(resolution))}"
            )
        self.max_layers = max_layers
        self.max_pools = max_pools
        self.resolution = resolution
        self.in_channels = in_channels
        self.input_shape = (in_channels, resolution, resolution)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"ChainSpace({args})"

    def config(self) -> dict[str, Any]:
        return {
            "kernels": list(self.kernels),
            "widths": list(self.widths),
            "max_layers": self.max_layers,
            "max_pools": self.max_pools,
            "resolution": self.resolution,
            "in_channels": self.in_channels,
        }

    # -- canonical form --------------------------------------------------------------------
    def parse(self, spec: str) -> Genotype:
        text = spec.strip()
        layers = self._read_json(text) if text.startswith("[") else self._read_text(text)
        self.check_layers(layers, spec)
        return self.from_layers(layers)

    def from_layers(self, layers: Sequence[ChainLayer]) -> Genotype:
        """The genotype of a layer list (skips sorted); call :meth:`check_layers` first."""
        return Genotype(self.name, "-".join(layer.token() for layer in layers))

    def to_layers(self, genotype: Genotype) -> tuple[ChainLayer, ...]:
        """The layers of a genotype of this space."""
        if genotype.space != self.name:
            raise GenotypeError(
                f"genotype '{genotype.key()}' belongs to space '{genotype.space}', "
                f"not '{self.name}'"
            )
        return tuple(self._read_text(genotype.spec))

    def layer_list(self, genotype: Genotype) -> list[dict[str, Any]]:
        """The JSON-able layer list of ``genotype`` (what :meth:`parse` reads back)."""
        return [layer.to_json() for layer in self.to_layers(genotype)]

    def _read_text(self, text: str) -> list[ChainLayer]:
        layers = []
        for position, raw in enumerate(text.split("-"), start=1):
            token = raw.strip().lower().replace(" ", "")
            if token == POOL:
                layers.append(pool())
                continue
            match = _CONV_RE.fullmatch(token)
            if match is None:
                raise GenotypeError(
                    f"'{text}': layer {position} '{raw}' is not a layer; write {_FORM}, joined "
                    "by '-'"
                )
            kernel, channels, skips = match.groups()
            sources = [int(s) for s in skips.split("+") if s]
            layers.append(conv(int(kernel), int(channels), sources))
        return layers

    def _read_json(self, text: str) -> list[ChainLayer]:
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"cannot read the layer list as JSON: {exc}") from None
        if not isinstance(items, list):
            raise GenotypeError("a JSON layer list must be a list of {'op': ...} objects")
        layers = []
        for position, item in enumerate(items, start=1):
            op = item.get("op") if isinstance(item, dict) else None
            if op == POOL:
                layers.append(pool())
            elif op == CONV:
                try:
                    layers.append(
                        conv(
                            int(item["kernel"]),
                            int(item["channels"]),
                            [int(s) for s in item.get("skips", [])],
                        )
                    )
                except (KeyError, TypeError, ValueError):
                    raise GenotypeError(
                        f"layer {position} {item!r}: a conv needs integer 'kernel' and "
                        "'channels' and a list of integer 'skips'"
                    ) from None
            else:
                raise GenotypeError(f"layer {position} {item!r}: 'op' must be 'conv' or 'pool'")
        return layers

    def check_layers(self, layers: Sequence[ChainLayer], spec: str = "") -> None:
        """Raise GenotypeError, saying what to change, unless ``layers`` is in this space."""
        where = f"'{spec}': " if spec else ""
        if not layers:
            raise GenotypeError(f"{where}a network needs at least one layer, e.g. k3c16")
        if not layers[0].is_conv:
            raise GenotypeError(f"{where}the first layer must be a conv, e.g. k3c16")
        if len(layers) > self.max_layers:
            raise GenotypeError(
                f"{where}{len(layers)} layers, but this space allows at most {self.max_layers} "
                "(space option max_layers)"
            )
        pools = sum(not layer.is_conv for layer in layers)
        if pools > self.max_pools:
            raise GenotypeError(
                f"{where}{pools} pools, but this space allows at most {self.max_pools} "
                "(space option max_pools)"
            )
        for index, layer in enumerate(layers, start=1):
            if not layer.is_conv:
                continue
            if layer.kernel not in self.kernels:
                raise GenotypeError(
                    f"{where}layer {index}: kernel {layer.kernel} is not allowed; kernels: "
                    f"{', '.join(map(str, self.kernels))}"
                )
            if layer.channels not in self.widths:
                raise GenotypeError(
                    f"{where}layer {index}: {layer.channels} channels are not allowed; widths: "
                    f"{', '.join(map(str, self.widths))}"
                )
            if index == 1 and layer.skips:
                raise GenotypeError(f"{where}the first layer cannot take skips")
            for source in layer.skips:
                if not self.skip_allowed(layers, index, source):
                    raise GenotypeError(
                        f"{where}layer {index}: no skip from node {source}; a skip comes from "
                        f"an earlier layer's output (node 1 to {index - 1}) with no pool "
                        "between it and the layer"
                    )

    @staticmethod
    def skip_allowed(layers: Sequence[ChainLayer], target: int, source: int) -> bool:
        """Whether conv layer ``target`` (1-based) may take a skip from node ``source``."""
        if not 1 <= source < target:
            return False
        return all(layer.is_conv for layer in layers[source:target])

    def size(self) -> int | None:
        return None  # unbounded in spirit; finite only through max_layers

    # -- shapes ----------------------------------------------------------------------------
    def node_channels(self, layers: Sequence[ChainLayer], in_channels: int) -> list[int]:
        """Channels of every node (node 0: the input)."""
        channels = [in_channels]
        for layer in layers:
            channels.append(layer.channels if layer.is_conv else channels[-1])
        return channels

    def layers(self, genotype: Genotype) -> list[LayerInfo]:
        infos = []
        channels = self.in_channels
        for layer in self.to_layers(genotype):
            if layer.is_conv:
                channels = layer.channels
                infos.append(LayerInfo(op=CONV, kernel=layer.kernel, channels=channels))
            else:
                infos.append(LayerInfo(op="maxpool", kernel=2, channels=channels, stride=2))
        return infos

    # -- search operators ------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Genotype:
        """A small random network, the kind LEMONADE starts from: 2 to 4 convs from the lower
        half of the widths, up to 2 pools, and a skip into each conv with probability 1/4."""
        small = self.widths[: max(1, (len(self.widths) + 1) // 2)]
        n_convs = int(rng.integers(2, 5))
        n_convs = min(n_convs, self.max_layers)
        layers = [
            conv(int(rng.choice(self.kernels)), int(rng.choice(small))) for _ in range(n_convs)
        ]
        n_pools = int(rng.integers(0, min(2, self.max_pools, self.max_layers - n_convs) + 1))
        for _ in range(n_pools):
            layers.insert(int(rng.integers(1, len(layers) + 1)), pool())
        for index, layer in enumerate(layers, start=1):
            sources = [s for s in range(1, index) if self.skip_allowed(layers, index, s)]
            if layer.is_conv and sources and rng.random() < 0.25:
                layers[index - 1] = replace(layer, skips=(int(rng.choice(sources)),))
        return self.from_layers(layers)

    def edits(self, layers: Sequence[ChainLayer]) -> list[tuple[str, dict[str, Any]]]:
        """Every single edit that gives a valid, different network: ``(kind, arguments)``."""
        out: list[tuple[str, dict[str, Any]]] = []
        n = len(layers)
        pools = sum(not layer.is_conv for layer in layers)
        channels = self.node_channels(layers, 0)
        if n < self.max_layers:
            for after in range(1, n + 1):
                if channels[after] in self.widths:
                    for kernel in self.kernels:
                        out.append(("insert_conv", {"after": after, "kernel": kernel}))
                if pools < self.max_pools:
                    out.append(("insert_pool", {"after": after}))
        for index, layer in enumerate(layers, start=1):
            if index > 1:
                out.append(("remove_layer", {"layer": index}))
            if not layer.is_conv:
                continue
            for width in self.widths:
                if width != layer.channels:
                    out.append(("set_channels", {"layer": index, "channels": width}))
            for kernel in self.kernels:
                if kernel != layer.kernel:
                    out.append(("set_kernel", {"layer": index, "kernel": kernel}))
            for source in range(1, index):
                if source in layer.skips:
                    out.append(("remove_skip", {"layer": index, "source": source}))
                elif self.skip_allowed(layers, index, source):
                    out.append(("add_skip", {"layer": index, "source": source}))
        return out

    def edit(
        self, layers: Sequence[ChainLayer], kind: str, args: dict[str, Any]
    ) -> list[ChainLayer]:
        """Apply one edit from :meth:`edits`; skips that become invalid are dropped."""
        layers = list(layers)
        if kind == "insert_conv":
            after = args["after"]
            channels = self.node_channels(layers, 0)[after]
            layers = _renumber(layers, lambda s: s + 1 if s > after else s)
            layers.insert(after, conv(args["kernel"], channels))
        elif kind == "insert_pool":
            after = args["after"]
            layers = _renumber(layers, lambda s: s + 1 if s > after else s)
            layers.insert(after, pool())
        elif kind == "remove_layer":
            index = args["layer"]
            del layers[index - 1]
            # Skips from the removed node now come from the node before it.
            layers = _renumber(layers, lambda s: s - 1 if s >= index else s)
        elif kind == "set_channels":
            index = args["layer"]
            layers[index - 1] = replace(layers[index - 1], channels=args["channels"])
        elif kind == "set_kernel":
            index = args["layer"]
            layers[index - 1] = replace(layers[index - 1], kernel=args["kernel"])
        elif kind in ("add_skip", "remove_skip"):
            index, source = args["layer"], args["source"]
            skips = set(layers[index - 1].skips)
            skips = skips | {source} if kind == "add_skip" else skips - {source}
            layers[index - 1] = replace(layers[index - 1], skips=tuple(sorted(skips)))
        else:
            raise ValueError(f"unknown chain edit '{kind}'")
        return self._drop_invalid_skips(layers)

    def _drop_invalid_skips(self, layers: list[ChainLayer]) -> list[ChainLayer]:
        out = list(layers)
        for index, layer in enumerate(out, start=1):
            if layer.is_conv and layer.skips:
                kept = tuple(s for s in layer.skips if self.skip_allowed(out, index, s))
                out[index - 1] = replace(layer, skips=kept)
        return out

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """One random edit (insert or remove a layer, change width or kernel, add or drop a
        skip), uniform over the edits that are possible here."""
        layers = self.to_layers(genotype)
        options = self.edits(layers)
        for i in rng.permutation(len(options)):
            kind, args = options[int(i)]
            child = self.edit(layers, kind, args)
            if tuple(child) != layers:
                return self.from_layers(child)
        raise GenotypeError(f"'{genotype.spec}' has no neighbour in this space")

    def crossover(self, a: Genotype, b: Genotype, rng: np.random.Generator) -> Genotype:
        """One-point crossover: a prefix of ``a`` then a suffix of ``b``, repaired to fit."""
        la, lb = self.to_layers(a), self.to_layers(b)
        cut_a = int(rng.integers(1, len(la) + 1))
        cut_b = int(rng.integers(0, len(lb) + 1))
        head = list(la[:cut_a])
        # Skip sources in b's suffix are renumbered; ones that pointed before the cut go.
        tail = [
            replace(layer, skips=tuple(s - cut_b + cut_a for s in layer.skips if s > cut_b))
            for layer in lb[cut_b:]
        ]
        layers = (head + tail)[: self.max_layers]
        while sum(not layer.is_conv for layer in layers) > self.max_pools:
            last_pool = max(i for i, layer in enumerate(layers) if not layer.is_conv)
            layers = _renumber(layers, lambda s, p=last_pool + 1: s - 1 if s >= p else s)
            del layers[last_pool]
        return self.from_layers(self._drop_invalid_skips(layers))

    # -- encodings -------------------------------------------------------------------------
    @property
    def encoding_size(self) -> int:
        return _FEATURES_PER_LAYER * self.max_layers + 3

    def encode(self, genotype: Genotype) -> np.ndarray:
        """Per layer slot (zero-padded to ``max_layers``): is conv, is pool, kernel, log2 width
        and skip count, all scaled to [0, 1]; then depth, pools and skips of the network."""
        layers = self.to_layers(genotype)
        out = np.zeros(self.encoding_size, dtype=np.float32)
        max_kernel, max_width = max(self.kernels), max(self.widths)
        for i, layer in enumerate(layers):
            row = out[i * _FEATURES_PER_LAYER : (i + 1) * _FEATURES_PER_LAYER]
            if layer.is_conv:
                row[0] = 1.0
                row[2] = layer.kernel / max_kernel
                row[3] = math.log2(1 + layer.channels) / math.log2(1 + max_width)
                row[4] = len(layer.skips) / self.max_layers
            else:
                row[1] = 1.0
        tail = out[-3:]
        tail[0] = len(layers) / self.max_layers
        tail[1] = sum(not layer.is_conv for layer in layers) / max(1, self.max_pools)
        tail[2] = sum(len(layer.skips) for layer in layers) / self.max_layers
        return out

    # -- networks --------------------------------------------------------------------------
    def build(self, genotype: Genotype, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        layers = self.to_layers(genotype)
        from hwnas.spaces._chain_net import ChainNetwork

        return ChainNetwork(layers, num_classes=num_classes, in_channels=in_channels)


def _renumber(layers: Sequence[ChainLayer], move: Any) -> list[ChainLayer]:
    return [
        replace(layer, skips=tuple(sorted({move(s) for s in layer.skips})))
        if layer.is_conv
        else layer
        for layer in layers
    ]


def __getattr__(name: str) -> Any:
    # ChainConv and ChainNetwork are torch modules in _chain_net, imported on first use so that
    # importing this space (to search a table or list spaces) never imports torch.
    if name in ("ChainConv", "ChainNetwork"):
        from hwnas.spaces import _chain_net

        return getattr(_chain_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
