"""The environment of a measurement, stored with it: what produced the number."""

from __future__ import annotations

import functools
import platform
from collections.abc import Sequence
from typing import Any

from hwnas.devices import DeviceProfile
from hwnas.hardware import cpu_model, fingerprint, gpu_info

__all__ = ["measurement_env"]


@functools.cache
def _versions(runtime: str) -> dict[str, str]:
    import torch

    versions = {"torch": torch.__version__, "python": platform.python_version()}
    if runtime == "onnxruntime":
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return versions


def measurement_env(
    profile: DeviceProfile, input_shape: Sequence[int] | None = None, **extra: Any
) -> dict[str, Any]:
    """JSON-able description: device, hardware, library versions, threads, batch, shape.

    ``extra`` adds method-specific entries (``method``, ``backend``, ``convention`` ...).
    """
    env: dict[str, Any] = {
        "device": profile.name,
        "target": profile.torch_device,
        "runtime": profile.runtime,
        "threads": profile.threads,
        "batch_size": profile.batch_size,
    }
    if input_shape is not None:
        env["input_shape"] = [int(v) for v in input_shape]
    if profile.runtime == "table":
        env["table"] = str(profile.table_path())
        return {**env, **extra}
    env["warmup"] = profile.warmup
    env["repeats"] = profile.repeats
    if profile.device == "cpu":
        env["cpu"] = cpu_model()
    else:
        info = gpu_info(profile.device_index) or {}
        env["gpu"] = info.get("name", "unknown")
        env["driver"] = info.get("driver", "unknown")
    if profile.providers:
        env["providers"] = list(profile.providers)
    env.update(_versions(profile.runtime))
    env["fingerprint"] = fingerprint(profile)
    return {**env, **extra}
