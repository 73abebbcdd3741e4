"""Supernets of the ``nb201`` cell space: the trainer's view of the cell supernet, edge costs.

The network is :class:`hwnas.search.supernet.cell.CellSupernet` (every cell edge holds the five
operations; one-hot edge weights compute exactly ``NB201Space.build``'s network). This module
adapts it to :class:`~hwnas.search.supernet.trainer.SupernetTrainer`'s interface (one weight
tensor per position: the six edges, five operations each), and gives the hardware cost of every
(edge, operation) so the relaxed theta has a differentiable expected cost:

- ``params`` and ``macs``: exact, from the space's additive cost model
  (:mod:`hwnas.profilers.additive`: one build per (edge, operation) change, verified on random
  cells); every cell of the network repeats the edge, so an edge's cost covers all its cells.
- ``latency``: measured on the run's device. All edges of a cell have the same shape, so an
  operation costs the same on every edge: the five networks whose edges all carry one
  operation are timed interleaved, and ``(lat(all op) - lat(all none)) / 6`` is the operation's
  per-edge cost, ``lat(all none)`` the fixed part. (The NAS-Bench-201 table's latency columns
  are per network too; :func:`table_latency_term` fits per-edge costs to such a column by least
  squares and reports the fit's error.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.search.supernet.costs import COST_METRICS, CostTerm
from hwnas.search.supernet.tasks import ClassificationTask
from hwnas.spaces.nb201 import EDGES, OPS, NB201Space
from hwnas.types import Genotype

__all__ = [
    "CellClassificationTask",
    "CellSupernetAdapter",
    "cell_counted_terms",
    "cell_latency_term",
    "table_latency_term",
]


class CellSupernetAdapter(nn.Module):
    """``forward(x, weights, active)`` with one tensor of five weights per edge."""

    def __init__(self, space: NB201Space, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        from hwnas.search.supernet.cell import CellSupernet

        self.space = space
        self.net = CellSupernet(
            num_classes=num_classes,
            in_channels=in_channels,
            channels=space.channels,
            cells_per_stage=space.cells_per_stage,
        )

    @property
    def num_choices(self) -> list[int]:
        return [len(OPS)] * len(EDGES)

    @property
    def aux_skip(self) -> float:
        """DARTS-'s auxiliary skip weight of every edge (0 outside darts-minus training)."""
        return float(self.net.aux_skip)

    @aux_skip.setter
    def aux_skip(self, beta: float) -> None:
        self.net.aux_skip = float(beta)

    def forward(
        self,
        x: torch.Tensor,
        weights: Sequence[torch.Tensor],
        active: Sequence[Sequence[int]] | None = None,
    ) -> torch.Tensor:
        # Inactive operations have weight 0 in every path mode; the cell skips them.
        return self.net(x, torch.stack(list(weights)))

    def one_hot(self, genotype: Genotype) -> tuple[list[torch.Tensor], list[list[int]]]:
        indices = [int(i) for i in self.space.to_indices(genotype)]
        device = next(self.parameters()).device
        weights = []
        for j in indices:
            w = torch.zeros(len(OPS), device=device)
            w[j] = 1.0
            weights.append(w)
        return weights, [[j] for j in indices]

    def extract(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        state = self.net.extract_state(genotype)
        return {k: v.detach().to("cpu").clone() for k, v in state.items()}


class CellClassificationTask(ClassificationTask):
    """Classification with the ``nb201`` cell supernet (its own stem and classifier)."""

    def __init__(self, *, space: NB201Space, data: Any, settings: Any) -> None:
        super().__init__(space=space, data=data, settings=settings)  # type: ignore[arg-type]

    @classmethod
    def from_provider(cls, provider: Any, space: Any) -> CellClassificationTask:
        return cls(space=space, data=provider.data, settings=provider.settings)

    def make_head(self) -> nn.Module:
        raise ConfigError("the nb201 cell supernet carries its own classifier")

    def make_supernet(self) -> nn.Module:
        assert isinstance(self.space, NB201Space)
        return CellSupernetAdapter(
            self.space, num_classes=self.num_classes, in_channels=self.in_channels
        )


def cell_counted_terms(
    space: NB201Space, metrics: Sequence[str], *, num_classes: int, input_shape: Sequence[int]
) -> list[CostTerm]:
    """Exact ``params`` / ``macs`` per (edge, operation) from the additive cost model."""
    from hwnas.profilers.additive import METRICS, additive_model

    unknown = [m for m in metrics if m not in ("params", "macs")]
    if unknown:
        raise ConfigError(
            f"the nb201 supernet trades latency, params and macs, not {', '.join(unknown)}"
        )
    model = additive_model(space, num_classes, input_shape)
    if model is None:
        raise ConfigError("nb201's costs are not additive for this configuration")
    terms = []
    for metric in metrics:
        col = METRICS.index(metric)
        per_choice = [torch.tensor(d[:, col], dtype=torch.float64) for d in model.deltas]
        terms.append(
            CostTerm(
                metric,
                COST_METRICS[metric],
                float(model.base[col]),
                per_choice,
                source="additive model (exact)",
            )
        )
    return terms


def _per_op_term(fixed: float, per_op: Sequence[float], source: str) -> CostTerm:
    row = torch.tensor([max(0.0, float(v)) for v in per_op], dtype=torch.float64)
    return CostTerm("latency", "ms", float(fixed), [row.clone() for _ in EDGES], source=source)


def cell_latency_term(
    space: NB201Space,
    profile: Any,
    *,
    num_classes: int,
    input_shape: Sequence[int],
    seed: int = 0,
) -> tuple[CostTerm, dict[str, Any]]:
    """Per-edge latency (ms) on ``profile``'s device from five uniform cells (module docstring);
    also the measurements' medians and spreads."""
    from hwnas.profilers.latency import measure_torch_latencies

    models = []
    for op in OPS:
        genotype = space.from_indices([OPS.index(op)] * len(EDGES))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            models.append(
                space.build(genotype, num_classes=num_classes, in_channels=input_shape[0]).eval()
            )
    measured = measure_torch_latencies(models, input_shape, profile=profile, seed=seed)
    ms = [float(m.value) for m in measured]
    per_op = [(v - ms[0]) / len(EDGES) for v in ms]
    info = {
        "uniform_cells_ms": dict(zip(OPS, ms)),
        "per_edge_ms": dict(zip(OPS, per_op)),
        "rcv": {op: float(m.stats.get("rcv", float("nan"))) for op, m in zip(OPS, measured)},
    }
    return _per_op_term(ms[0], per_op, f"measured on {profile.name}: uniform cells"), info


def table_latency_term(
    space: NB201Space, specs: Sequence[str], latencies: Sequence[float]
) -> tuple[CostTerm, dict[str, float]]:
    """Per-(edge, operation) latency fitted by least squares to whole-network latencies
    (e.g. a NAS-Bench-201 table column), with the fit's mean absolute percentage error."""
    if len(specs) != len(latencies) or len(specs) < 1 + len(EDGES) * (len(OPS) - 1):
        raise ConfigError("a per-edge latency fit needs at least 25 architectures with latencies")
    rows = np.zeros((len(specs), 1 + len(EDGES) * (len(OPS) - 1)))
    rows[:, 0] = 1.0
    for i, spec in enumerate(specs):
        for p, j in enumerate(space.to_indices(space.parse(spec))):
            if j:  # "none" is the reference operation of every edge
                rows[i, 1 + p * (len(OPS) - 1) + int(j) - 1] = 1.0
    y = np.asarray(latencies, dtype=float)
    coef, *_ = np.linalg.lstsq(rows, y, rcond=None)
    fit = rows @ coef
    mape = float(np.mean(np.abs(fit - y) / np.maximum(np.abs(y), 1e-9)))
    per_choice = []
    for p in range(len(EDGES)):
        deltas = [0.0, *coef[1 + p * (len(OPS) - 1) : 1 + (p + 1) * (len(OPS) - 1)]]
        low = min(deltas)  # shift so the cheapest operation of an edge costs 0 (all >= 0)
        per_choice.append(torch.tensor([d - low for d in deltas], dtype=torch.float64))
    fixed = float(coef[0]) + sum(
        min(0.0, *coef[1 + p * (len(OPS) - 1) : 1 + (p + 1) * (len(OPS) - 1)])
        for p in range(len(EDGES))
    )
    term = CostTerm("latency", "ms", max(fixed, 0.0), per_choice, source="least-squares fit")
    return term, {"mape": mape, "n": float(len(specs))}
