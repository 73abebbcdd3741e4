"""The NAS-Bench-201 cell's vocabulary, shared by the space and its torch network."""

from __future__ import annotations

#: Operation names, in the order used for encodings and for the base-5 index codes.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to node, from node) of each edge, in arch-string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
