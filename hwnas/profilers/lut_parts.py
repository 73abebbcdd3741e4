"""The parts a latency table times: a network's plan (stem, slots, head), the distinct blocks
of a space and their keys, and the measurement of those parts (locally or on a remote board)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from hwnas.devices import DeviceProfile
from hwnas.errors import ConfigError
from hwnas.types import Measurement

if TYPE_CHECKING:
    from torch import nn

    from hwnas.spaces.base import SearchSpace
    from hwnas.spaces.mobilenet import MobileNetSpace, SlotSpec
    from hwnas.spaces.mobilenet_spec import LayerSpec


OVERHEAD = "overhead"


# -- the network's parts and their keys -----------------------------------------------------
def _out(size: int, stride: int) -> int:
    return -(-size // stride)


def block_key(choice: str, c_in: int, c_out: int, stride: int, hw: tuple[int, int]) -> str:
    return f"{choice}|{c_in}>{c_out}|s{stride}|{hw[0]}x{hw[1]}"


@dataclass(frozen=True)
class NetworkPlan:
    """The parts of a space's networks for one input shape and number of classes."""

    input_shape: tuple[int, int, int]
    num_classes: int
    slot_hw: tuple[tuple[int, int], ...]  # input (H, W) of each searchable slot
    stem_key: str
    head_key: str
    stem_args: tuple[int, int, int]  # in_channels, out_channels, stride
    head_args: tuple[int, int, int]  # in_channels, head_channels, num_classes
    head_hw: tuple[int, int]

    def slot_key(self, slot: SlotSpec, choice: str) -> str:
        return block_key(
            choice, slot.in_channels, slot.out_channels, slot.stride, self.slot_hw[slot.index]
        )

    def layer_key(self, spec: LayerSpec) -> str:
        return block_key(
            spec.choice, spec.in_channels, spec.out_channels, spec.stride, self.slot_hw[spec.index]
        )


def _chain_space(space: SearchSpace) -> MobileNetSpace:
    from hwnas.spaces.mobilenet import MobileNetSpace

    if not isinstance(space, MobileNetSpace):
        raise ConfigError(
            f"latency tables need a chain of per-layer blocks (space 'mobilenet'); space "
            f"'{space.name}' has none: use --latency measured"
        )
    return space


def network_plan(
    space: SearchSpace, *, num_classes: int, input_shape: Sequence[int] | None = None
) -> NetworkPlan:
    """Where each part of ``space``'s networks sits for this input shape (C, H, W)."""
    chain = _chain_space(space)
    c, h, w = (int(v) for v in (input_shape or chain.input_shape))
    hw = (_out(h, chain.stem_stride), _out(w, chain.stem_stride))
    stem_hw = (h, w)
    slot_hw = []
    slots = chain.slot_specs()
    for slot in slots:
        slot_hw.append(hw)
        hw = (_out(hw[0], slot.stride), _out(hw[1], slot.stride))
    last = slots[-1].out_channels
    stem_args = (c, chain.stem_out_channels, chain.stem_stride)
    head_args = (last, chain.head_out_channels, num_classes)
    return NetworkPlan(
        input_shape=(c, h, w),
        num_classes=num_classes,
        slot_hw=tuple(slot_hw),
        stem_key=f"stem|{c}>{stem_args[1]}|s{stem_args[2]}|{stem_hw[0]}x{stem_hw[1]}",
        head_key=f"head|{last}>{head_args[1]}|c{num_classes}|{hw[0]}x{hw[1]}",
        stem_args=stem_args,
        head_args=head_args,
        head_hw=hw,
    )


def _space_digest(space: SearchSpace, plan: NetworkPlan) -> str:
    key = {
        "space": space.name,
        "config": space.config(),
        "num_classes": plan.num_classes,
        "input_shape": list(plan.input_shape),
    }
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Part:
    key: str
    make: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]


def _distinct_parts(space: MobileNetSpace, plan: NetworkPlan) -> dict[str, _Part]:
    from torch import nn

    from hwnas.spaces.blocks import make_block, make_head, make_stem

    parts: dict[str, _Part] = {}
    parts[OVERHEAD] = _Part(OVERHEAD, lambda: nn.ReLU(), plan.input_shape)
    stem = plan.stem_args
    parts[plan.stem_key] = _Part(plan.stem_key, lambda: make_stem(*stem), plan.input_shape)
    for slot in space.slot_specs():
        shape = (slot.in_channels, *plan.slot_hw[slot.index])
        for choice in slot.choices:
            key = plan.slot_key(slot, choice)
            if key not in parts:
                args = (choice, slot.in_channels, slot.out_channels, slot.stride)
                parts[key] = _Part(key, lambda args=args: make_block(*args), shape)
    head = plan.head_args
    head_shape = (head[0], *plan.head_hw)
    parts[plan.head_key] = _Part(plan.head_key, lambda: make_head(*head, space.dropout), head_shape)
    return parts


def _measure_parts(
    parts: list[_Part],
    profile: DeviceProfile,
    *,
    repeats: int | None,
    seed: int,
    progress: Callable[[str, int, int], None] | None,
) -> list[Measurement]:
    """Latency of every part, interleaved in one session so drift hits all parts alike."""
    import warnings

    from hwnas.profilers.base import SpreadWarning, measure_interleaved, pinned_threads
    from hwnas.profilers.env import measurement_env

    repeats = profile.repeats if repeats is None else repeats
    if profile.runtime == "remote":
        return _measure_parts_remote(parts, profile, repeats=repeats, seed=seed, progress=progress)
    workloads: list[Any] = []
    with pinned_threads(profile.threads):
        for i, part in enumerate(parts):
            model = part.make().eval()
            if profile.runtime == "onnxruntime":
                from hwnas.profilers.ort import OrtWorkload, export_onnx_bytes

                onnx = export_onnx_bytes(model, part.input_shape, batch_size=profile.batch_size)
                workloads.append(OrtWorkload(onnx, part.input_shape, profile=profile))
            else:
                from hwnas.profilers.latency import TorchWorkload

                workloads.append(TorchWorkload(model, part.input_shape, profile=profile))
            if progress is not None:
                progress("prepare", i + 1, len(parts))
        env = measurement_env(profile, None, method="lut entry")
        with warnings.catch_warnings():
            # Reported once for the table (unstable_entries), not once per entry.
            warnings.simplefilter("ignore", SpreadWarning)
            return measure_interleaved(
                workloads,
                warmup=profile.warmup,
                repeats=repeats,
                device=profile.torch_device,
                env=env,
                max_cv=profile.max_cv,
                seed=seed,
                progress=(lambda d, t: progress("measure", d, t)) if progress else None,
            )


def _measure_parts_remote(
    parts: list[_Part],
    profile: DeviceProfile,
    *,
    repeats: int,
    seed: int,
    progress: Callable[[str, int, int], None] | None,
) -> list[Measurement]:
    """Every part exported here and timed on the profile's boards (each file's own shape)."""
    import warnings

    from hwnas.profilers.base import SpreadWarning
    from hwnas.profilers.ort import export_onnx_bytes
    from hwnas.profilers.remote import measure_remote

    exports = []
    for i, part in enumerate(parts):
        model = part.make().eval()
        exports.append(export_onnx_bytes(model, part.input_shape, batch_size=profile.batch_size))
        if progress is not None:
            progress("prepare", i + 1, len(parts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        measured = measure_remote(
            exports,
            profile,
            None,
            repeats=repeats,
            seed=seed,
            progress=(lambda d, t: progress("measure", d, t)) if progress else None,
        )
    return [replace(m, env={**m.env, "method": "lut entry"}) for m in measured]
