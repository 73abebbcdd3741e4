"""Latency lookup tables (FBNet style): every distinct block of a space measured once.

An architecture's latency is predicted as the sum of its layers' entries plus the fixed costs
(stem, head and one runtime call). An entry is keyed by what determines its cost: the block
choice, input and output channels, stride and input resolution, e.g.
``ir_k3_e6|16>24|s2|32x32``. Entries are measured on the device in one interleaved session
(see :func:`hwnas.profilers.base.time_interleaved`), each alone, as the network runs it.

A standalone block pays the runtime's per-call cost (a session ``Run``, the Python call)
which the whole network pays once. That cost is measured with a one-operator model and taken
off every entry; the fixed costs include it once.

Tables are cached per device fingerprint and space configuration (:func:`table_path`), so a
new CPU, driver or library version never reuses stale timings. A table file can also back a
``table`` device profile: latency (and ``energy_mj`` when entries have it) for a device that
hwnas cannot run on, measured there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.devices import DeviceProfile
from hwnas.errors import DeviceError, HwnasError
from hwnas.files import atomic_write
from hwnas.hardware import fingerprint
from hwnas.profilers.lut_scale import fit_scale, sample_genotypes
from hwnas.types import Genotype, Measurement

if TYPE_CHECKING:
    from hwnas.spaces.base import SearchSpace
    from hwnas.spaces.mobilenet import SlotSpec
    from hwnas.spaces.mobilenet_spec import LayerSpec
from hwnas.profilers.lut_parts import (
    OVERHEAD,
    _chain_space,
    _distinct_parts,
    _measure_parts,
    _Part,
    _space_digest,
    network_plan,
)

__all__ = [
    "LUT_FORMAT",
    "LatencyTable",
    "LutEntry",
    "cache_dir",
    "table_path",
]


LUT_FORMAT = 1


def cache_dir() -> Path:
    """``$HWNAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/hwnas``, else ``~/.cache/hwnas``."""
    if os.environ.get("HWNAS_CACHE_DIR"):
        return Path(os.environ["HWNAS_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwnas"


def read_document(path: Path, what: str, format: str, remedy: str) -> dict[str, Any]:
    """The JSON object in ``path`` whose ``format`` field is ``format``; anything else is a
    one-line DeviceError that names ``what`` the file should be and the ``remedy``."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DeviceError(f"cannot read {what} '{path}': {exc.strerror}") from None
    except ValueError as exc:
        raise DeviceError(f"{what} '{path}' is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != format:
        raise DeviceError(f"'{path}' is not a {what} of format {format}; {remedy}")
    return data


@dataclass(frozen=True)
class LutEntry:
    """One measured part: median milliseconds, the spread, optional millijoules."""

    ms: float
    stats: Mapping[str, float] = field(default_factory=dict)
    energy_mj: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ms": self.ms, "stats": dict(self.stats)}
        if self.energy_mj is not None:
            data["energy_mj"] = self.energy_mj
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LutEntry:
        energy = data.get("energy_mj")
        return cls(
            ms=float(data["ms"]),
            stats={k: float(v) for k, v in dict(data.get("stats", {})).items()},
            energy_mj=None if energy is None else float(energy),
        )


def table_path(
    profile: DeviceProfile,
    space: SearchSpace,
    *,
    num_classes: int,
    input_shape: Sequence[int] | None = None,
    kind: str = "lut",
) -> Path:
    """The cache file of a table (``kind="lut"``) or predictor (``"predictor"``)."""
    plan = network_plan(space, num_classes=num_classes, input_shape=input_shape)
    name = f"{kind}-{profile.name}-{space.name}-{fingerprint(profile)}-{_space_digest(space, plan)}"
    return cache_dir() / "lut" / f"{name}.json"


# -- the table ------------------------------------------------------------------------------
class LatencyTable:
    """Measured milliseconds per block, stem, head and call overhead; sums predict networks.

    The supernet and strategies use :meth:`choice_ms` / :meth:`slot_ms` (per slot and block
    choice, in the order of ``slot.choices``), :attr:`fixed_ms` and :meth:`predict`.
    """

    def __init__(
        self,
        *,
        space: SearchSpace,
        entries: Mapping[str, LutEntry],
        num_classes: int,
        input_shape: Sequence[int] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.space = _chain_space(space)
        self.plan = network_plan(space, num_classes=num_classes, input_shape=input_shape)
        self.entries = dict(entries)
        self.meta = dict(meta or {})

    # -- queries ----------------------------------------------------------------------------
    def entry(self, key: str) -> LutEntry:
        found = self.entries.get(key)
        if found is None:
            source = self.meta.get("path", "this latency table")
            raise DeviceError(
                f"{source} has no entry '{key}': it was built for another space, input shape "
                "or number of classes; build one for this space with `hwnas devices lut`"
            )
        return found

    def choice_ms(self, slot: SlotSpec, choice: str) -> float:
        """Milliseconds of block ``choice`` at ``slot`` (runtime call overhead excluded)."""
        return self.entry(self.plan.slot_key(slot, choice)).ms

    def slot_ms(self, slot: SlotSpec) -> tuple[float, ...]:
        """Milliseconds of every choice of ``slot``, in the order of ``slot.choices``."""
        return tuple(self.choice_ms(slot, c) for c in slot.choices)

    def choice_matrix(self) -> list[tuple[float, ...]]:
        """:meth:`slot_ms` of every slot in network order (ragged: slots differ in choices)."""
        return [self.slot_ms(slot) for slot in self.space.slot_specs()]

    def layer_ms(self, spec: LayerSpec) -> float:
        """Milliseconds of one layer of a genotype (``space.layer_specs(g)``)."""
        return self.entry(self.plan.layer_key(spec)).ms

    @property
    def fixed_ms(self) -> float:
        """Stem + head + one runtime call: the part every architecture pays."""
        keys = (self.plan.stem_key, self.plan.head_key)
        overhead = self.entries.get(OVERHEAD)
        return sum(self.entry(k).ms for k in keys) + (overhead.ms if overhead else 0.0)

    def predict(self, genotype: Genotype) -> float:
        """Predicted milliseconds per batch: the layers' entries plus the fixed costs."""
        return self.fixed_ms + sum(self.layer_ms(s) for s in self.space.layer_specs(genotype))

    def predict_energy(self, genotype: Genotype) -> float | None:
        """Predicted millijoules per batch, or None when any part has no energy entry."""
        keys = [self.plan.stem_key, self.plan.head_key]
        keys += [self.plan.layer_key(s) for s in self.space.layer_specs(genotype)]
        values = [self.entry(k).energy_mj for k in keys]
        if OVERHEAD in self.entries:
            values.append(self.entries[OVERHEAD].energy_mj or 0.0)
        if any(v is None for v in values):
            return None
        return float(sum(v for v in values if v is not None))

    def has_energy(self) -> bool:
        return any(e.energy_mj is not None for e in self.entries.values())

    def measurement(self, genotype: Genotype, *, device: str | None = None) -> Measurement:
        """:meth:`predict` as a Measurement; ``env`` names the table and its known error."""
        env = {
            "method": "lut",
            "table": self.meta.get("path", ""),
            "fingerprint": self.meta.get("fingerprint", ""),
            "device": self.meta.get("device", ""),
        }
        if "fidelity" in self.meta:
            env["error"] = self.meta["fidelity"]
        return Measurement("latency", self.predict(genotype), "ms", device=device, env=env)

    # -- files ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.meta.items() if k != "path"}
        return {
            "format": LUT_FORMAT,
            "space": self.space.name,
            "space_config": self.space.config(),
            "num_classes": self.plan.num_classes,
            "input_shape": list(self.plan.input_shape),
            "fixed": {"stem": self.plan.stem_key, "head": self.plan.head_key},
            **meta,
            "entries": {k: e.to_json() for k, e in sorted(self.entries.items())},
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as JSON (atomically: a killed build leaves no half file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_json(), indent=1))
        self.meta["path"] = str(path)
        return path

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, space: SearchSpace | None = None
    ) -> LatencyTable:
        """A table from its JSON file; ``space`` defaults to the one it was built for."""
        from hwnas.spaces import make_space

        path = Path(path)
        data = read_document(
            path, "latency table", LUT_FORMAT, "rebuild it with `hwnas devices lut --rebuild`"
        )
        try:
            if space is None:
                space = make_space(data["space"], data.get("space_config", {}))
            entries = {k: LutEntry.from_json(v) for k, v in data["entries"].items()}
            meta = {
                k: v
                for k, v in data.items()
                if k not in ("entries", "format", "space_config", "num_classes", "input_shape")
            }
            table = cls(
                space=space,
                entries=entries,
                num_classes=int(data["num_classes"]),
                input_shape=data.get("input_shape"),
                meta=meta,
            )
        except (KeyError, TypeError, ValueError, AttributeError, HwnasError) as exc:
            raise DeviceError(
                f"latency table '{path}' is malformed ({type(exc).__name__}: {exc}); rebuild it "
                "with `hwnas devices lut --rebuild` (same --device and --space)"
            ) from None
        table.meta["path"] = str(path)
        return table

    def for_space(
        self, space: SearchSpace, *, num_classes: int, input_shape: Sequence[int] | None = None
    ) -> LatencyTable:
        """The same entries queried for another space configuration (a table-backed device)."""
        return LatencyTable(
            space=space,
            entries=self.entries,
            num_classes=num_classes,
            input_shape=input_shape,
            meta=self.meta,
        )

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        space: SearchSpace,
        profile: DeviceProfile,
        *,
        num_classes: int = 10,
        input_shape: Sequence[int] | None = None,
        repeats: int | None = None,
        seed: int = 0,
        progress: Callable[[str, int, int], None] | None = None,
        calibrate: int = 0,
    ) -> LatencyTable:
        """Measure every distinct block of ``space`` (and stem, head, call overhead) on
        ``profile``. ``progress(stage, done, total)`` reports exports and timing rounds.
        ``calibrate`` random whole networks are timed in the same session and every entry is
        scaled so that sums match them (:mod:`hwnas.profilers.lut_scale`)."""
        from hwnas.hardware import require_available

        if profile.runtime == "table":
            raise DeviceError(
                f"device '{profile.name}' is a table; measure its latency table on the device"
            )
        require_available(profile)
        chain = _chain_space(space)
        plan = network_plan(chain, num_classes=num_classes, input_shape=input_shape)
        parts = _distinct_parts(chain, plan)
        networks = sample_genotypes(chain, calibrate, seed) if calibrate else []
        whole = [
            _Part(
                f"network|{i}",
                lambda g=g: chain.build(
                    g, num_classes=num_classes, in_channels=plan.input_shape[0]
                ),
                plan.input_shape,
            )
            for i, g in enumerate(networks)
        ]
        start = time.perf_counter()
        measurements = _measure_parts(
            [*parts.values(), *whole], profile, repeats=repeats, seed=seed, progress=progress
        )
        measured_networks = [m.value for m in measurements[len(parts) :]]
        measurements = measurements[: len(parts)]
        raw = dict(zip(parts, measurements))
        overhead = raw[OVERHEAD].value
        entries = {}
        for key, m in raw.items():
            # Each standalone part paid one runtime call, which the network pays once.
            ms = m.value if key == OVERHEAD else max(m.value - overhead, 0.0)
            stats = {k: m.stats[k] for k in ("p10", "p90", "rcv", "n") if k in m.stats}
            entries[key] = LutEntry(ms=ms, stats=stats)
        env = dict(measurements[0].env)
        env.pop("warning", None)
        unstable = sum("warning" in m.env for m in measurements)
        meta = {
            "device": profile.name,
            "fingerprint": fingerprint(profile),
            "profile": profile.to_json(),
            "env": env,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "build_seconds": round(time.perf_counter() - start, 2),
            "unstable_entries": unstable,
        }
        table = cls(
            space=chain,
            entries=entries,
            num_classes=num_classes,
            input_shape=input_shape,
            meta=meta,
        )
        if networks:
            fit = fit_scale([table.predict(g) for g in networks], measured_networks)
            table.entries = {
                k: LutEntry(ms=e.ms * fit["scale"], stats=e.stats, energy_mj=e.energy_mj)
                for k, e in table.entries.items()
            }
            table.meta["calibration"] = fit
        return table
