"""Latency measured on the boards of a ``remote`` device profile (device servers).

The seam is :func:`hwnas.profilers.ort.measure_onnx_latencies`: for a remote profile it hands
the ONNX bytes to :func:`measure_remote`, which spreads them over the profile's pool and turns
the boards' timing samples into the same Measurements a local onnxruntime measurement gives
(median, p10/p90, CV, n; drift-corrected per board batch), with the board's environment and
``board`` / ``server`` saying which board measured each one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hwnas.devices import DeviceProfile
from hwnas.hardware import fingerprint
from hwnas.profilers.base import (
    MIN_WORKLOADS_FOR_DRIFT,
    SpreadWarning,
    drift_corrected,
    timing_measurement,
)
from hwnas.remote.session import pool
from hwnas.types import Measurement

__all__ = ["measure_remote", "request_settings"]


def request_settings(
    profile: DeviceProfile,
    input_shape: Sequence[int] | None,
    *,
    repeats: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The measure request's settings from the profile (protocol field names)."""
    return {
        "providers": list(profile.providers),
        "provider_options": {k: dict(v) for k, v in profile.provider_options.items()},
        "threads": profile.threads,
        "batch_size": profile.batch_size,
        "input_shape": [int(v) for v in input_shape] if input_shape is not None else None,
        "warmup": profile.warmup,
        "repeats": profile.repeats if repeats is None else repeats,
        "clock": profile.clock,
        "seed": seed,
    }


def measure_remote(
    onnx_models: Sequence[bytes | str | os.PathLike[str]],
    profile: DeviceProfile,
    input_shape: Sequence[int] | None = None,
    *,
    repeats: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Measurement]:
    """Latency (ms per batch) of each model on some board of ``profile``'s pool."""
    models = [m if isinstance(m, bytes) else Path(m).read_bytes() for m in onnx_models]
    settings = request_settings(profile, input_shape, repeats=repeats, seed=seed)
    the_pool = pool(profile.name, profile.servers, profile.token_env, profile.timeout)
    chunks = the_pool.measure(models, settings, progress=progress)
    print_ = fingerprint(profile)
    out: list[Measurement | None] = [None] * len(models)
    for chunk in chunks:
        samples = [r["samples"] for r in chunk.results]
        env: dict[str, Any] = {
            "device": profile.name,
            "target": "remote",
            "runtime": "remote",
            "server": chunk.url,
            **chunk.env,
            "repeats": settings["repeats"],
            "interleaved": len(samples),
            "fingerprint": print_,
        }
        if len(samples) >= MIN_WORKLOADS_FOR_DRIFT and settings["repeats"] >= 3:
            samples, spread = drift_corrected(samples)
            env["drift_correction"] = "per-round median factor"
            env["drift_p90_p10"] = round(spread, 4)
        for index, result, s in zip(chunk.indices, chunk.results, samples):
            shape = result.get("input_shape") or []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SpreadWarning)
                m = timing_measurement(
                    s,
                    device=profile.name,
                    env={**env, "input_shape": list(shape[1:])},
                    max_cv=profile.max_cv,
                )
            if "warning" in m.env:
                warnings.warn(m.env["warning"], SpreadWarning, stacklevel=2)
            out[index] = m
    missing = [i for i, m in enumerate(out) if m is None]
    assert not missing, f"the pool lost models {missing}"
    return [m for m in out if m is not None]
