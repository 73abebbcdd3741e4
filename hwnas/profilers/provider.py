"""DeviceProvider: the hardware metrics of a run's target device for the evaluator.

Latency is measured on the device (``--latency measured``, the default), predicted from the
device's latency table (``lut``) or from its calibrated predictor (``predictor``); a ``table``
device always predicts from its table. Peak memory, ONNX size and (on NVIDIA GPUs with NVML,
or from a table with energy entries) energy come with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hwnas.devices import ONNX_RUNTIMES, DeviceProfile, load_device
from hwnas.errors import ConfigError, DeviceError
from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.hardware import require_available
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Measurement

if TYPE_CHECKING:
    from hwnas.config import RunConfig
    from hwnas.profilers.lut import LatencyTable
    from hwnas.profilers.predictor import LatencyPredictor

__all__ = ["LATENCY_MODES", "DeviceProvider", "cached_predictor", "cached_table"]

LATENCY_MODES = ("measured", "lut", "predictor")


def _hint(
    command: str,
    profile: DeviceProfile,
    space: SearchSpace,
    num_classes: int,
    input_shape: Sequence[int],
) -> str:
    """The command line that builds what is missing, with this run's settings."""
    import json
    import shlex

    from hwnas.devices import device_argument
    from hwnas.spaces import make_space

    parts = [f"hwnas devices {command} --device {device_argument(profile)} --space {space.name}"]
    defaults = make_space(space.name).config()
    for key, value in space.config().items():
        if defaults.get(key) != value:
            option = f"{key}={json.dumps(value, separators=(',', ':'))}"
            parts.append(f"--space-option {shlex.quote(option)}")
    if num_classes != 10:
        parts.append(f"--num-classes {num_classes}")
    if tuple(input_shape) != tuple(space.input_shape):
        parts.append(f"--input-shape {','.join(str(v) for v in input_shape)}")
    return " ".join(parts)


def cached_table(
    profile: DeviceProfile,
    space: SearchSpace,
    *,
    num_classes: int,
    input_shape: Sequence[int],
) -> LatencyTable:
    """The device's latency table for this space: its ``table`` file, or the cached build."""
    from hwnas.profilers.lut import LatencyTable, table_path

    if profile.runtime == "table":
        path = profile.table_path()
        assert path is not None
        return LatencyTable.load(path).for_space(
            space, num_classes=num_classes, input_shape=input_shape
        )
    path = table_path(profile, space, num_classes=num_classes, input_shape=input_shape)
    if not path.is_file():
        raise DeviceError(
            f"no latency table for device '{profile.name}' and this space on this machine; "
            f"build it with `{_hint('lut', profile, space, num_classes, input_shape)}`"
        )
    return LatencyTable.load(path, space=space)


def cached_predictor(
    profile: DeviceProfile,
    space: SearchSpace,
    *,
    num_classes: int,
    input_shape: Sequence[int],
) -> LatencyPredictor:
    """The device's calibrated latency predictor for this space (see ``devices calibrate``)."""
    from hwnas.profilers.lut import table_path
    from hwnas.profilers.predictor import LatencyPredictor

    table = cached_table(profile, space, num_classes=num_classes, input_shape=input_shape)
    path = table_path(
        profile, space, num_classes=num_classes, input_shape=input_shape, kind="predictor"
    )
    if not path.is_file():
        raise DeviceError(
            f"no latency predictor for device '{profile.name}' and this space on this machine; "
            f"calibrate one with `{_hint('calibrate', profile, space, num_classes, input_shape)}`"
        )
    return LatencyPredictor.load(path, table=table)


class DeviceProvider(MetricProvider):
    """latency (ms), peak_memory (B), onnx_size (B) and energy (mJ, when available).

    ``resource`` is the hardware measurements occupy (``"cpu"``, ``"cuda:0"``), None when
    nothing runs there (latency from a table or predictor on a CPU profile); ``exclusive`` is
    True when something is timed there (measured latency, NVML energy). ``cheap`` is False only
    when latency is measured.
    """

    role = "device"

    def __init__(
        self,
        *,
        space: SearchSpace,
        profile: DeviceProfile,
        num_classes: int,
        input_shape: Sequence[int],
        latency: str = "measured",
        seed: int = 0,
    ) -> None:
        if latency not in LATENCY_MODES:
            raise ConfigError(
                f"unknown latency source '{latency}'; choose one of: {', '.join(LATENCY_MODES)}"
            )
        if profile.runtime == "table" and latency == "predictor":
            raise ConfigError(
                f"device '{profile.name}' is a lookup table: use --latency lut (or leave it out)"
            )
        self.space = space
        self.profile = profile
        self.num_classes = num_classes
        self.input_shape = tuple(int(v) for v in input_shape)
        self.seed = seed
        self.state = require_available(profile)
        self.latency_mode = "lut" if profile.runtime == "table" else latency
        self._table: LatencyTable | None = None
        self._predictor: LatencyPredictor | None = None
        lookup = {"num_classes": num_classes, "input_shape": self.input_shape}
        if self.latency_mode == "lut":
            self._table = cached_table(profile, space, **lookup)
        elif self.latency_mode == "predictor":
            self._predictor = cached_predictor(profile, space, **lookup)
        measured = self.latency_mode == "measured"
        on_device = profile.runtime != "table"
        timed_energy = on_device and self.state.energy
        self.cheap = not measured
        # Occupied: whenever something is timed or allocated on the device (peak memory on a
        # GPU); exclusive: when timings would suffer from anything else running there.
        uses_device = measured or timed_energy or (on_device and profile.device == "cuda")
        if profile.runtime == "remote":
            # Timed on the boards, whose servers measure one request at a time: nothing here
            # to hold, and parallel workers keep several boards busy.
            uses_device = timed_energy = measured = False
        self.resource = profile.torch_device if uses_device else None
        self.exclusive = measured or timed_energy

    @classmethod
    def from_config(
        cls,
        config: RunConfig,
        space: SearchSpace,
        *,
        num_classes: int,
        input_shape: Sequence[int],
    ) -> DeviceProvider:
        """From ``config.device`` and ``config.profiling["latency"]``; DeviceError when the
        device cannot run here, before anything is written."""
        if config.device is None:
            raise ConfigError("no --device given")
        profile = load_device(config.device)
        explicit = config.profiling.get("latency")
        if profile.runtime == "table" and explicit == "measured":
            raise ConfigError(
                f"device '{profile.name}' is a lookup table and cannot be measured here; "
                "use --latency lut (or leave it out)"
            )
        return cls(
            space=space,
            profile=profile,
            num_classes=num_classes,
            input_shape=input_shape,
            latency=str(explicit or "measured"),
            seed=config.seed,
        )

    def units(self) -> Mapping[str, str]:
        units = {"latency": "ms", "peak_memory": "B", "onnx_size": "B"}
        if self.profile.runtime == "table":
            if self._table is not None and self._table.has_energy():
                units["energy"] = "mJ"
        elif self.state.energy:
            units["energy"] = "mJ"
        return units

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext | None = None
    ) -> dict[str, Measurement]:
        genotype = candidate.genotype
        unknown = [m for m in metrics if m not in self.units()]
        if unknown:
            raise ConfigError(f"device '{self.profile.name}' does not give {', '.join(unknown)}")
        results: dict[str, Measurement] = {}
        model: Any = None
        onnx: bytes | None = None

        def built() -> Any:
            nonlocal model
            if model is None:
                # Weights are random: no metric here depends on their values.
                model = self.space.build(
                    genotype, num_classes=self.num_classes, in_channels=self.input_shape[0]
                )
            return model

        def exported() -> bytes:
            nonlocal onnx
            if onnx is None:
                from hwnas.profilers.ort import export_onnx_bytes

                onnx = export_onnx_bytes(
                    built(), self.input_shape, batch_size=self.profile.batch_size
                )
            return onnx

        if "onnx_size" in metrics:
            env = {"input_shape": list(self.input_shape), "batch_size": self.profile.batch_size}
            results["onnx_size"] = Measurement("onnx_size", float(len(exported())), "B", env=env)
        if "latency" in metrics:
            results["latency"] = self._latency(genotype, built, exported)
        if "peak_memory" in metrics:
            from hwnas.profilers.memory import PeakMemoryProfiler

            # A table device runs elsewhere: the liveness analysis on this CPU stands in.
            on_here = self.profile.runtime not in ("table", "remote")
            profile = self.profile if on_here else _cpu_like(self.profile)
            results["peak_memory"] = PeakMemoryProfiler(profile=profile).measure(
                built(), self.input_shape
            )
        if "energy" in metrics:
            results["energy"] = self._energy(genotype, built)
        return results

    def _latency(self, genotype: Genotype, built: Any, exported: Any) -> Measurement:
        device = self.profile.torch_device if self.profile.runtime != "table" else None
        if self._predictor is not None:
            return self._predictor.measurement(genotype, device=device)
        if self._table is not None:
            return self._table.measurement(genotype, device=device or self.profile.name)
        with warnings.catch_warnings():
            # The spread warning stays in the measurement's env; a search should not print
            # one line per candidate.
            warnings.simplefilter("ignore")
            if self.profile.runtime in ONNX_RUNTIMES:
                from hwnas.profilers.ort import measure_onnx_latency

                return measure_onnx_latency(exported(), self.profile, self.input_shape)
            from hwnas.profilers.latency import measure_torch_latencies

            return measure_torch_latencies(
                [built()], self.input_shape, profile=self.profile, seed=self.seed
            )[0]

    def _energy(self, genotype: Genotype, built: Any) -> Measurement:
        if self.profile.runtime == "table":
            assert self._table is not None
            value = self._table.predict_energy(genotype)
            if value is None:
                raise DeviceError(f"the table of device '{self.profile.name}' lacks energy")
            env = {"method": "lut", "table": self._table.meta.get("path", "")}
            return Measurement("energy", value, "mJ", device=self.profile.name, env=env)
        from hwnas.profilers.energy import EnergyProfiler

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return EnergyProfiler(profile=self.profile).measure(built(), self.input_shape)

    def measure_latencies(self, genotypes: Sequence[Genotype]) -> list[Measurement]:
        """Latency of several architectures, measured interleaved (fair comparisons)."""
        if self.latency_mode != "measured":
            return [self._latency(g, None, None) for g in genotypes]
        models = [
            self.space.build(g, num_classes=self.num_classes, in_channels=self.input_shape[0])
            for g in genotypes
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.profile.runtime in ONNX_RUNTIMES:
                from hwnas.profilers.ort import export_onnx_bytes, measure_onnx_latencies

                exports = [
                    export_onnx_bytes(m, self.input_shape, batch_size=self.profile.batch_size)
                    for m in models
                ]
                return measure_onnx_latencies(exports, self.profile, self.input_shape)
            from hwnas.profilers.latency import measure_torch_latencies

            return measure_torch_latencies(
                models, self.input_shape, profile=self.profile, seed=self.seed
            )


def _cpu_like(profile: DeviceProfile) -> DeviceProfile:
    from dataclasses import replace

    return replace(profile, runtime="torch", device="cpu", table=None, servers=(), providers=())
