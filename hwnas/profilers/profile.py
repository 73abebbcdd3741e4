"""Profile one model on one device: every metric with its unit and spread (``hwnas profile``).

A model is named as ``torchvision:NAME`` (any torchvision classification model, random
weights), a genotype ``SPACE:SPEC`` (``mobilenet:...``, ``nb201:|...|``, ``macro:02012100``)
or the path of an ``.onnx`` file (onnxruntime devices only).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.devices import DeviceProfile
from hwnas.errors import ConfigError, DeviceError
from hwnas.hardware import require_available
from hwnas.types import Measurement

__all__ = ["METRICS", "ModelRef", "profile_model", "resolve_model"]

#: Every metric ``profile_model`` can give, in the order it reports them.
METRICS = ("latency", "macs", "params", "size", "onnx_size", "peak_memory", "energy")


@dataclass
class ModelRef:
    """A resolved MODEL argument: a torch module or an ONNX file, and its input shape."""

    label: str
    input_shape: tuple[int, int, int]
    module: Any = None  # torch.nn.Module
    onnx_path: Path | None = None


def resolve_model(
    text: str,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    space_options: Mapping[str, Any] | None = None,
    default_shape: Sequence[int] = (3, 224, 224),
) -> ModelRef:
    """The model named by ``text``; ConfigError with the accepted forms otherwise."""
    if num_classes is not None and num_classes < 1:
        raise ConfigError(f"--num-classes must be at least 1, not {num_classes}")
    shape = tuple(int(v) for v in input_shape) if input_shape else None
    if shape is not None and any(v < 1 for v in shape):
        raise ConfigError(f"every input dimension must be at least 1, not {list(shape)}")
    if text.lower().endswith(".onnx"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"ONNX file '{text}' does not exist")
        return ModelRef(label=path.name, input_shape=shape or (0, 0, 0), onnx_path=path)
    prefix, sep, rest = text.partition(":")
    if sep and prefix == "torchvision":
        return _torchvision(rest, num_classes, shape or tuple(default_shape))
    from hwnas.spaces import SPACES, make_space

    if sep and prefix in SPACES:
        import torch

        space = make_space(prefix, space_options)
        genotype = space.parse(rest)
        shape = shape or tuple(space.input_shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = space.build(genotype, num_classes=num_classes or 10, in_channels=shape[0])
        return ModelRef(label=genotype.key(), input_shape=shape, module=module)
    raise ConfigError(
        f"cannot read model '{text}'; write torchvision:NAME (e.g. torchvision:resnet18), "
        f"SPACE:SPEC with SPACE one of {', '.join(SPACES.names())}, or a path to an .onnx file"
    )


#: torchvision models built with training-only auxiliary heads unless told otherwise.
_AUX_HEADS = ("googlenet", "inception_v3")


def _torchvision(name: str, num_classes: int | None, shape: tuple[int, ...]) -> ModelRef:
    import torch
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown torchvision classification model '{name}'{hint}; e.g. resnet18, "
            "mobilenet_v3_small, efficientnet_b0"
        )
    kwargs: dict[str, Any] = {"weights": None}
    if name in _AUX_HEADS:
        # Auxiliary classifiers run only in training; the deployed network (eval, export) has
        # none, and torchvision's published GoogLeNet figures (6,624,904 params) count none.
        kwargs["aux_logits"] = False
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # e.g. GoogLeNet's note about its initialisation
        torch.manual_seed(0)
        module = torchvision.models.get_model(name, **kwargs)
    return ModelRef(label=f"torchvision:{name}", input_shape=shape, module=module.eval())


def profile_model(
    ref: ModelRef,
    profile: DeviceProfile,
    *,
    metrics: Sequence[str] | None = None,
    macs_backend: str = "torch",
    repeats: int | None = None,
) -> dict[str, Measurement]:
    """Every requested metric (default: all this device can give) as Measurements."""
    if repeats is not None and repeats < 1:
        raise ConfigError(f"--repeats must be at least 1 timed run, not {repeats}")
    wanted = list(metrics or METRICS)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric {', '.join(unknown)}; choose from: {', '.join(METRICS)}")
    if profile.runtime == "table":
        raise DeviceError(
            f"device '{profile.name}' is a lookup table for a search space: it predicts the "
            "latency of that space's genotypes in searches, not of arbitrary models"
        )
    state = require_available(profile)
    if ref.onnx_path is not None:
        return _profile_onnx(ref, profile, wanted, repeats)
    explicit = metrics is not None
    if "energy" in wanted and not state.energy:
        if explicit:
            why = "; ".join(state.notes) or "energy needs an NVIDIA GPU with NVML"
            raise DeviceError(f"device '{profile.name}' gives no energy here: {why}")
        wanted.remove("energy")
    return _profile_module(ref, profile, wanted, macs_backend, repeats)


def _profile_module(
    ref: ModelRef,
    profile: DeviceProfile,
    wanted: list[str],
    macs_backend: str,
    repeats: int | None,
) -> dict[str, Measurement]:
    from dataclasses import replace

    from hwnas.profilers.flops import MacsProfiler, ParamsProfiler, SizeProfiler

    model, shape = ref.module, ref.input_shape
    if repeats is not None:
        profile = replace(profile, repeats=repeats)
    results: dict[str, Measurement] = {}
    # Device-independent counts first, while the model is still on the CPU.
    if "macs" in wanted:
        results["macs"] = MacsProfiler(backend=macs_backend).measure(model, shape)
    if "params" in wanted:
        results["params"] = ParamsProfiler().measure(model, shape)
    if "size" in wanted:
        results["size"] = SizeProfiler().measure(model, shape)
    onnx: bytes | None = None
    on_ort = profile.runtime in ("onnxruntime", "remote")
    if "onnx_size" in wanted or ("latency" in wanted and on_ort):
        from hwnas.profilers.ort import export_onnx_bytes

        onnx = export_onnx_bytes(model, shape, batch_size=profile.batch_size)
        env = {"input_shape": list(shape), "batch_size": profile.batch_size}
        if "onnx_size" in wanted:
            results["onnx_size"] = Measurement("onnx_size", float(len(onnx)), "B", env=env)
    if "peak_memory" in wanted:
        from hwnas.profilers.memory import PeakMemoryProfiler

        here = profile  # a remote board's peak memory: the liveness analysis here stands in
        if profile.runtime == "remote":
            here = replace(profile, runtime="torch", servers=(), providers=())
        results["peak_memory"] = PeakMemoryProfiler(profile=here).measure(model, shape)
    if "latency" in wanted:
        if onnx is not None:
            from hwnas.profilers.ort import measure_onnx_latency

            results["latency"] = measure_onnx_latency(onnx, profile, shape)
        else:
            from hwnas.profilers.latency import TorchLatencyProfiler

            results["latency"] = TorchLatencyProfiler(profile=profile).measure(model, shape)
    if "energy" in wanted:
        from hwnas.profilers.energy import EnergyProfiler

        results["energy"] = EnergyProfiler(profile=profile).measure(model, shape)
    return {m: results[m] for m in METRICS if m in results}


def _profile_onnx(
    ref: ModelRef, profile: DeviceProfile, wanted: list[str], repeats: int | None
) -> dict[str, Measurement]:
    import onnx

    from hwnas.profilers.ort import measure_onnx_latency, onnx_file_size

    assert ref.onnx_path is not None
    if profile.runtime not in ("onnxruntime", "remote"):
        raise DeviceError(
            f"an .onnx file runs on onnxruntime devices only, not on '{profile.name}' "
            f"({profile.runtime}); use e.g. --device ort-cpu"
        )
    try:
        proto = onnx.load(str(ref.onnx_path))
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise many types for bad files
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"'{ref.onnx_path}' is not a readable ONNX model ({reason})") from None
    results: dict[str, Measurement] = {}
    # Weights are the floating-point initializers (shapes and indices are int64 constants).
    floats = {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
    count = sum(_numel(t.dims) for t in proto.graph.initializer if t.data_type in floats)
    if "params" in wanted:
        results["params"] = Measurement(
            "params", float(count), "count", env={"source": "onnx initializers"}
        )
    if "size" in wanted:
        results["size"] = Measurement("size", float(4 * count), "B", env={"dtype": "float32"})
    if "onnx_size" in wanted:
        results["onnx_size"] = Measurement("onnx_size", float(onnx_file_size(ref.onnx_path)), "B")
    if "latency" in wanted:
        shape = ref.input_shape if all(ref.input_shape) else None
        results["latency"] = measure_onnx_latency(ref.onnx_path, profile, shape, repeats=repeats)
    return results


def _numel(dims: Sequence[int]) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n
