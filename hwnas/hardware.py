"""What this machine has (CPU model, GPUs, library versions, the cache fingerprint of a device
profile) and whether a device profile can run here: checked without measuring anything."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.devices import DeviceProfile
from hwnas.errors import DeviceError


# -- the hardware ---------------------------------------------------------------------------
@functools.cache
def cpu_model() -> str:
    """The CPU's model name as the OS reports it (``/proc/cpuinfo`` on Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def gpu_info(index: int = 0) -> dict[str, str] | None:
    """``{"name", "driver"}`` of GPU ``index`` via NVML, else torch; None without a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            driver = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return {
            "name": name.decode() if isinstance(name, bytes) else str(name),
            "driver": driver.decode() if isinstance(driver, bytes) else str(driver),
        }
    except Exception:  # noqa: BLE001 - NVML missing or no NVIDIA GPU: ask torch instead
        pass
    try:
        import torch

        if torch.cuda.is_available() and index < torch.cuda.device_count():
            return {
                "name": torch.cuda.get_device_name(index),
                "driver": f"cuda runtime {torch.version.cuda}",
            }
    except Exception:  # noqa: BLE001 - a broken CUDA setup means no usable GPU
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def fingerprint(profile: DeviceProfile) -> str:
    """A 16-hex hash of everything that determines latency on this profile, here.

    The hardware (CPU model and core count, or GPU name and driver), the runtime and its
    version, providers, threads and batch size. Latency tables and predictors are cached under
    it, so a new driver or library version never reuses stale timings.
    """
    key: dict[str, Any] = {
        "runtime": profile.runtime,
        "threads": profile.threads,
        "batch_size": profile.batch_size,
        "clock": profile.clock,
    }
    if profile.runtime == "table":
        key["table"] = str(profile.table_path())
    elif profile.runtime == "remote":
        from hwnas.remote.session import board_identity

        key["torch"] = _version("torch")  # builds (and exports) every model
        key["providers"] = list(profile.providers)
        key["provider_options"] = {k: dict(v) for k, v in profile.provider_options.items()}
        key["board"] = board_identity(
            profile.name, profile.servers, profile.token_env, profile.timeout
        )
    else:
        key["torch"] = _version("torch")  # builds (and exports) every model
        if profile.runtime == "onnxruntime":
            key["onnxruntime"] = _version("onnxruntime") or _version("onnxruntime-gpu")
            key["providers"] = list(profile.providers)
            key["provider_options"] = {k: dict(v) for k, v in profile.provider_options.items()}
        if profile.device == "cpu":
            key["cpu"] = cpu_model()
            key["cores"] = os.cpu_count()
        else:
            key["gpu"] = gpu_info(profile.device_index)
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- availability ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Availability:
    """Whether a profile can measure here; ``reason`` says why not, ``notes`` what is missing."""

    usable: bool
    reason: str = ""
    notes: tuple[str, ...] = ()
    energy: bool = False  # NVML's energy counter (or a table's energy column) is available


def availability(profile: DeviceProfile) -> Availability:
    """Check, without measuring, that ``profile`` can run on this machine."""
    if profile.runtime == "table":
        path = profile.table_path()
        if path is None or not path.is_file():
            return Availability(
                False,
                f"latency table '{path}' not found; build it on the device with "
                "`hwnas devices lut --out FILE`",
            )
        return Availability(True, energy=_table_has_energy(path))
    if profile.runtime == "remote":
        from hwnas.remote.session import remote_availability

        usable, reason, notes = remote_availability(
            profile.name, profile.servers, profile.token_env, profile.timeout, profile.providers
        )
        return Availability(usable, reason, notes)
    if _version("torch") is None:
        return Availability(False, "torch is not installed")
    notes: list[str] = []
    energy = False
    if profile.device == "cuda":
        reason = _cuda_problem(profile.device_index)
        if reason:
            return Availability(False, reason)
        energy, why = _nvml_energy(profile.device_index)
        if not energy:
            notes.append(f"no energy: {why}")
    if profile.runtime == "onnxruntime":
        try:
            import onnxruntime
        except ImportError:
            return Availability(False, "onnxruntime is not installed (pip install onnxruntime)")
        present = set(onnxruntime.get_available_providers())
        for p in profile.providers:
            if p not in present:
                return Availability(False, _missing_provider(p, onnxruntime.__version__))
    return Availability(True, notes=tuple(notes), energy=energy)


def require_available(profile: DeviceProfile) -> Availability:
    """The profile's availability; DeviceError (one line) when it cannot run here."""
    state = availability(profile)
    if not state.usable:
        raise DeviceError(
            f"device '{profile.name}' is not usable here: {state.reason} "
            "(`hwnas devices` lists the devices usable on this machine)"
        )
    return state


def _no_gpu_driver() -> bool:
    """True when this Linux machine certainly has no GPU driver (saves importing torch)."""
    if not os.path.isdir("/proc") or platform.system() != "Linux":
        return False
    nodes = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")
    return not any(os.path.exists(p) for p in nodes)


def _cuda_problem(index: int) -> str:
    if _no_gpu_driver():
        return "CUDA is not available: no NVIDIA (or ROCm) GPU driver on this machine"
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda
        if built is None:
            return f"CUDA is not available (torch {torch.__version__} is a CPU-only build)"
        return (
            f"CUDA is not available (no NVIDIA GPU or driver found; torch built for CUDA {built})"
        )
    count = torch.cuda.device_count()
    if index >= count:
        return f"device_index {index} but only {count} CUDA device(s) are present"
    return ""


def _missing_provider(provider: str, version: str) -> str:
    if provider == "TensorrtExecutionProvider":
        return (
            f"onnxruntime {version} has no TensorRT provider (install onnxruntime-gpu and TensorRT)"
        )
    if provider == "CUDAExecutionProvider":
        return f"onnxruntime {version} has no CUDA provider (install onnxruntime-gpu)"
    return f"onnxruntime {version} has no {provider}"


def _nvml_energy(index: int) -> tuple[bool, str]:
    try:
        import pynvml
    except ImportError:
        return False, "needs nvidia-ml-py (pip install 'hwnas[nvml]')"
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # noqa: BLE001 - any NVML failure means no energy counter
        return False, f"NVML's energy counter is not readable ({exc})"
    return True, ""


def _table_has_energy(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
        return any(
            isinstance(e, Mapping) and e.get("energy_mj") is not None
            for e in data.get("entries", {}).values()
        )
    except (OSError, ValueError, AttributeError):
        return False
