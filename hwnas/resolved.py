"""The settings a run actually uses, resolved from its config and defaults.

``RunConfig`` keeps what the user gave (so that library defaults can improve), but a reader of
``config.toml`` needs the values that were used: epochs, learning rate, batch size, threads,
the device profile's protocol. :func:`resolve_training_threads` fixes the one default that
depends on the executor (training threads) when the run starts, so that a resumed run trains
with the same threads whatever executor continues it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hwnas.config import RunConfig


def resolve_training_threads(config: RunConfig) -> RunConfig:
    """``config`` with ``training.threads`` set when the run trains and the user gave none.

    Threads change floating-point summation order, so the same seed trains to slightly
    different weights with 1 and 2 threads. The default follows the executor (a process or Ray
    worker gets ``cpus_per_trial``, in-process training all of torch's threads); it is stored
    so that resuming with another executor trains as the run started. Give
    ``--train-option threads=N`` to get equal results from different executors.
    """
    if not config.dataset or config.training.get("threads") is not None:
        return config
    kind = config.executor.get("kind", "local")
    if kind == "local":
        import torch

        threads = int(torch.get_num_threads())
    else:
        threads = max(1, round(float(config.executor.get("cpus_per_trial", 1.0))))
    return config.replace(training={**config.training, "threads": threads})


def resolved_config(config: RunConfig, providers: Sequence[Any]) -> dict[str, Any]:
    """``config`` as a dict with ``[training]``, ``[profiling]`` and ``[executor]`` filled in
    from the providers that were built for it (the values used, defaults included)."""
    data = config.to_dict()
    training = dict(config.training)
    profiling = dict(config.profiling)
    for provider in providers:
        settings = getattr(provider, "settings", None)
        if settings is not None and hasattr(settings, "to_json"):
            training = {**settings.to_json(), **_other(config.training, settings)}
            device = getattr(provider, "device", None)
            if device is not None:
                training["train_device"] = str(device)
        profile = getattr(provider, "profile", None)
        if profile is not None and hasattr(profile, "to_json"):
            profiling = {
                "latency": getattr(provider, "latency_mode", profiling.get("latency")),
                "input_shape": list(getattr(provider, "input_shape", ()) or ()),
                "device_profile": profile.to_json(),
                **{k: v for k, v in profiling.items() if k != "latency"},
            }
    executor = {"kind": "local", **config.executor}
    data.update(training=training, profiling=profiling, executor=executor)
    return data


def _other(given: dict[str, Any], settings: Any) -> dict[str, Any]:
    """Keys of ``config.training`` that are not TrainSettings fields (fidelity, resolution ...)."""
    names = set(settings.to_json())
    return {k: v for k, v in given.items() if k not in names}
