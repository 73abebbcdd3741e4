"""One scale factor that makes a latency table's sums match whole networks on the device.

A table entry is a block timed alone. On onnxruntime a block alone pays for its input and
output copies and misses the fusions a whole graph gets, so table sums run about 2x over the
measured network (50% MAPE, docs/benchmarks.md); on PyTorch eager they are closer. Timing a
few random whole networks in the same interleaved session as the entries and scaling every
entry by the median ratio removes that bias while keeping each block's relative cost. The
ratio, and the leave-one-out error it leaves, are stored in the table's ``meta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Whole networks timed with a table by default (`hwnas devices lut`, supernet tables).
CALIBRATION_NETWORKS = 16


def fit_scale(sums: Sequence[float], measured: Sequence[float]) -> dict[str, Any]:
    """Median of measured / sum, with the table's MAPE before and (leave-one-out) after."""
    s, m = np.asarray(sums, dtype=float), np.asarray(measured, dtype=float)
    ratios = m / s
    scale = float(np.median(ratios))
    loo = np.array([np.median(np.delete(ratios, i)) for i in range(len(ratios))])
    return {
        "scale": scale,
        "networks": len(s),
        "mape_unscaled": float(np.mean(np.abs(s - m) / m)),
        "mape_leave_one_out": float(np.mean(np.abs(loo * s - m) / m)),
        "method": "median of measured / table sum over random whole networks, same session",
    }


def sample_genotypes(space: Any, n: int, seed: int) -> list[Any]:
    """``n`` distinct random genotypes of ``space`` (fewer when the space is smaller)."""
    rng = np.random.default_rng(seed + 7919)
    seen: dict[str, Any] = {}
    for _ in range(n * 20):
        g = space.sample(rng)
        seen.setdefault(g.key(), g)
        if len(seen) == n:
            break
    return list(seen.values())
