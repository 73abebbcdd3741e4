"""Differentiable hardware costs: per layer and candidate, weighted by the relaxed theta.

A cost term is ``fixed + sum_l sum_j w_lj c_lj`` (latency from the device's lookup table, MACs,
parameters) plus, for peak memory, ``max(fixed_peak, max_l sum_j w_lj a_lj)``: the weights add
up, the activations peak at one layer. With one-hot weights it is the architecture's own cost
(for latency: exactly the lookup table's sum, :meth:`LatencyTable.predict`).

Several terms are traded at once through :class:`CostSet`: each term is divided by its
cheapest architecture's value and the weighted mean taken, so the combined cost is
dimensionless and at least 1 (the losses in :mod:`hwnas.search.supernet.losses` rely on that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.spaces.mobilenet import MobileNetSpace

if TYPE_CHECKING:
    from hwnas.profilers.lut import LatencyTable
    from hwnas.search.supernet.tasks import SupernetTask

__all__ = ["COST_METRICS", "CostSet", "CostTerm", "counted_terms", "latency_term"]

#: Metrics a supernet can trade, with their units.
COST_METRICS: Mapping[str, str] = {
    "latency": "ms",
    "macs": "MAC",
    "params": "count",
    "peak_memory": "B",
}


@dataclass
class CostTerm:
    """One hardware metric as ``fixed + additive part (+ peak part)``; see the module docstring."""

    metric: str
    unit: str
    fixed: float
    per_choice: list[torch.Tensor]
    peak_choice: list[torch.Tensor] | None = None
    fixed_peak: float = 0.0
    source: str = ""

    def expected(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """The cost under relaxed ``weights`` (one tensor per layer); differentiable."""
        device = weights[0].device
        total = torch.tensor(self.fixed, dtype=torch.float64, device=device)
        for w, c in zip(weights, self.per_choice):
            total = total + (w.double() * c.to(device)).sum()
        if self.peak_choice is not None:
            peaks = [(w.double() * a.to(device)).sum() for w, a in zip(weights, self.peak_choice)]
            floor = torch.tensor(self.fixed_peak, dtype=torch.float64, device=device)
            total = total + torch.stack([floor, *peaks]).max()
        return total

    def exact(self, indices: Sequence[int]) -> float:
        """The cost of one architecture (a candidate index per layer)."""
        total = self.fixed + sum(float(c[j]) for c, j in zip(self.per_choice, indices))
        if self.peak_choice is not None:
            peaks = [float(a[j]) for a, j in zip(self.peak_choice, indices)]
            total += max([self.fixed_peak, *peaks])
        return total

    def bounds(self) -> tuple[float, float]:
        """(cheapest, most expensive) over all architectures (layers choose independently)."""
        low = self.fixed + sum(float(c.min()) for c in self.per_choice)
        high = self.fixed + sum(float(c.max()) for c in self.per_choice)
        if self.peak_choice is not None:
            low += max([self.fixed_peak, *(float(a.min()) for a in self.peak_choice)])
            high += max([self.fixed_peak, *(float(a.max()) for a in self.peak_choice)])
        return low, high


@dataclass
class CostSet:
    """Several cost terms combined: ``sum_m w_m C_m / C_m,min / sum_m w_m`` (>= 1)."""

    terms: list[CostTerm]
    weights: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.terms:
            raise ConfigError(
                "a supernet search needs at least one cost (--strategy-option cost=latency)"
            )
        if not self.weights:
            self.weights = [1.0] * len(self.terms)
        if len(self.weights) != len(self.terms) or any(w < 0 for w in self.weights):
            raise ConfigError("cost_weights needs one non-negative weight per cost")
        if sum(self.weights) <= 0:
            raise ConfigError("cost_weights must not all be zero")
        self._low = [max(t.bounds()[0], 1e-12) for t in self.terms]

    @property
    def metrics(self) -> list[str]:
        return [t.metric for t in self.terms]

    def normalised(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        total = sum(
            w * t.expected(weights) / low for w, t, low in zip(self.weights, self.terms, self._low)
        )
        return total / sum(self.weights)  # type: ignore[operator]

    def normalised_exact(self, indices: Sequence[int]) -> float:
        total = sum(
            w * t.exact(indices) / low for w, t, low in zip(self.weights, self.terms, self._low)
        )
        return total / sum(self.weights)

    def normalised_bounds(self) -> tuple[float, float]:
        high = sum(
            w * t.bounds()[1] / low for w, t, low in zip(self.weights, self.terms, self._low)
        )
        return 1.0, high / sum(self.weights)

    def per_layer(self, layer: int) -> torch.Tensor:
        """Layer ``layer``'s normalised additive cost per candidate (SNAS's decomposition)."""
        total = torch.zeros_like(self.terms[0].per_choice[layer], dtype=torch.float64)
        for w, t, low in zip(self.weights, self.terms, self._low):
            part = t.per_choice[layer].double()
            if t.peak_choice is not None:
                part = part + t.peak_choice[layer].double()  # the layer's share if it peaks
            total = total + w * part / low
        return total / sum(self.weights)

    def describe(self, indices: Sequence[int]) -> dict[str, float]:
        return {t.metric: t.exact(indices) for t in self.terms}


def latency_term(table: LatencyTable) -> CostTerm:
    """Milliseconds from a device's lookup table: fixed (stem, head, call) plus the entries."""
    per_choice = [torch.tensor(row, dtype=torch.float64) for row in table.choice_matrix()]
    return CostTerm(
        metric="latency",
        unit="ms",
        fixed=float(table.fixed_ms),
        per_choice=per_choice,
        source=str(table.meta.get("path", "lookup table")),
    )


def counted_terms(task: SupernetTask, metrics: Sequence[str]) -> list[CostTerm]:
    """MACs / parameters (counted on the meta device) and peak memory (liveness estimate on
    CPU, batch 1), per block, with stem and head as the fixed part."""
    from hwnas.profilers.cheap import count_macs, count_params
    from hwnas.spaces.blocks import make_block

    space = task.space
    slots = space.slot_specs()
    hw = _slot_resolutions(space, task.input_shape)
    wanted = [m for m in metrics if m in ("macs", "params")]
    per: dict[str, list[list[float]]] = {m: [] for m in wanted}
    for slot, res in zip(slots, hw):
        shape = (slot.in_channels, *res)
        rows: dict[str, list[float]] = {m: [] for m in wanted}
        for choice in slot.choices:
            with torch.device("meta"):
                block = make_block(choice, slot.in_channels, slot.out_channels, slot.stride)
            if "macs" in rows:
                rows["macs"].append(float(count_macs(block, shape)) if _has_params(block) else 0.0)
            if "params" in rows:
                rows["params"].append(float(count_params(block)))
        for m in wanted:
            per[m].append(rows[m])
    reference = space.from_indices([0] * len(slots))
    with torch.device("meta"):
        network = task.build(reference)
    totals = {"macs": lambda: float(count_macs(network, task.input_shape))}
    totals["params"] = lambda: float(count_params(network))
    terms = []
    for m in wanted:
        fixed = totals[m]() - sum(row[0] for row in per[m])
        tensors = [torch.tensor(row, dtype=torch.float64) for row in per[m]]
        terms.append(CostTerm(m, COST_METRICS[m], fixed, tensors, source="counted per block"))
    if "peak_memory" in metrics:
        terms.append(_peak_memory_term(task, hw))
    order = {m: i for i, m in enumerate(metrics)}
    return sorted(terms, key=lambda t: order[t.metric])


def _peak_memory_term(task: SupernetTask, hw: Sequence[tuple[int, int]]) -> CostTerm:
    from hwnas.profilers.memory import estimate_peak_memory, weight_bytes
    from hwnas.spaces.blocks import make_block

    space = task.space
    weights: list[list[float]] = []
    activations: list[list[float]] = []
    for slot, res in zip(space.slot_specs(), hw):
        shape = (slot.in_channels, *res)
        w_row, a_row = [], []
        for choice in slot.choices:
            block = make_block(choice, slot.in_channels, slot.out_channels, slot.stride)
            w_row.append(float(weight_bytes(block)))
            a_row.append(float(_activation_peak(block, shape, estimate_peak_memory)))
        weights.append(w_row)
        activations.append(a_row)
    reference = space.from_indices([0] * space.num_layers)
    network = task.build(reference)
    fixed = float(weight_bytes(network)) - sum(row[0] for row in weights)
    stem_peak = _activation_peak(network.stem, task.input_shape, estimate_peak_memory)
    last = space.slot_specs()[-1]
    head_shape = (last.out_channels, *_out_resolution(hw[-1], last.stride))
    head_peak = _activation_peak(network.head, head_shape, estimate_peak_memory)
    return CostTerm(
        metric="peak_memory",
        unit="B",
        fixed=fixed,
        per_choice=[torch.tensor(r, dtype=torch.float64) for r in weights],
        peak_choice=[torch.tensor(r, dtype=torch.float64) for r in activations],
        fixed_peak=float(max(stem_peak, head_peak)),
        source="liveness estimate per block (batch 1, fp32)",
    )


def _activation_peak(
    module: nn.Module, shape: Sequence[int], estimate: Callable[..., object]
) -> int:
    if not _has_params(module):
        return 0  # a skip layer allocates nothing
    return int(estimate(module, shape).activations)  # type: ignore[attr-defined]


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _out_resolution(hw: tuple[int, int], stride: int) -> tuple[int, int]:
    return (-(-hw[0] // stride), -(-hw[1] // stride))


def _slot_resolutions(space: MobileNetSpace, input_shape: Sequence[int]) -> list[tuple[int, int]]:
    """Input (H, W) of every slot for this input shape (not the space's nominal resolution)."""
    hw = _out_resolution((int(input_shape[1]), int(input_shape[2])), space.stem_stride)
    out = []
    for slot in space.slot_specs():
        out.append(hw)
        hw = _out_resolution(hw, slot.stride)
    return out
