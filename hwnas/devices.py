"""Device profiles: where and how hardware cost is measured, read from TOML files.

A profile names a runtime (``torch``, ``onnxruntime``, ``remote`` or ``table``), a device
(``cpu`` or ``cuda``), and the measurement protocol: threads, batch size, warm-up and repeats.
The built-in profiles live in ``device_profiles/`` (shipped as the package
``hwnas.device_profiles``); any other TOML file is loaded by its path.

This module never imports torch at import time: listing devices must be instant. Availability
checks import torch or onnxruntime lazily, only for the profiles that need them.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.resources
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

from hwnas.errors import DeviceError

_Text = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]


_Positive = Annotated[StrictInt, Field(gt=0)]


__all__ = [
    "ONNX_RUNTIMES",
    "ORT_PROVIDERS",
    "RUNTIMES",
    "DeviceProfile",
    "builtin_names",
    "device_argument",
    "list_devices",
    "load_device",
]


RUNTIMES = ("torch", "onnxruntime", "remote", "table")


#: Runtimes that measure ONNX files with onnxruntime: here, or on the boards of a ``remote``
#: profile (device servers, see ``hwnas.remote``).
ONNX_RUNTIMES = ("onnxruntime", "remote")


CLOCKS = ("wall", "thread")


DEVICES = ("cpu", "cuda")


#: Short provider names accepted in profiles, and the onnxruntime names they stand for.
ORT_PROVIDERS: Mapping[str, str] = MappingProxyType(
    {
        "cpu": "CPUExecutionProvider",
        "cuda": "CUDAExecutionProvider",
        "tensorrt": "TensorrtExecutionProvider",
        "openvino": "OpenVINOExecutionProvider",
        "coreml": "CoreMLExecutionProvider",
        "dml": "DmlExecutionProvider",
    }
)


_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


@dataclass(frozen=True, kw_only=True)
class DeviceProfile:
    """How to measure on one device. Times are in milliseconds, sizes in bytes.

    ``threads`` pins intra-op threads (``torch.set_num_threads``, ORT ``intra_op_num_threads``);
    ``input_shape`` (C, H, W) is optional: searches pass their dataset's shape. ``max_cv`` is
    the robust coefficient of variation above which a measurement is flagged as untrustworthy.
    ``clock`` is ``wall`` (elapsed time; CUDA events on GPUs) or ``thread``: the CPU time of
    the measuring thread, which single-threaded CPU inference runs on. It leaves out the time
    other processes hold the core, so it gives the latency of a quiet machine on a busy one.
    ``table`` is the latency table of a ``table`` runtime (a device hwnas cannot run on here),
    resolved relative to the profile file. A ``remote`` runtime measures with onnxruntime on
    the device servers at ``servers`` (a pool of boards of one kind), sending the token from
    the environment variable ``token_env``; ``timeout`` is the longest wait for one answer (s).
    """

    name: str
    description: str = ""
    runtime: str = "torch"
    device: str = "cpu"
    device_index: int = 0
    providers: tuple[str, ...] = ()
    provider_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    threads: int = 1
    batch_size: int = 1
    input_shape: tuple[int, ...] | None = None
    warmup: int = 10
    repeats: int = 30
    max_cv: float = 0.05
    clock: str = "wall"
    table: str | None = None
    servers: tuple[str, ...] = ()
    token_env: str = "HWNAS_DEVICE_TOKEN"
    timeout: float = 300.0
    source: str = ""  # the file the profile was read from

    @property
    def torch_device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``: the hardware this profile occupies while measuring."""
        return "cpu" if self.device == "cpu" else f"cuda:{self.device_index}"

    @property
    def label(self) -> str:
        """Short description for tables and logs, e.g. ``cpu (torch, 1 thread, batch 1)``."""
        if self.runtime == "table":
            return f"{self.name} (table {self.table})"
        if self.runtime == "remote":
            boards = f"{len(self.servers)} board{'s' * (len(self.servers) != 1)}"
            providers = "+".join(p.removesuffix("ExecutionProvider") for p in self.providers)
            return f"{self.name} (remote {providers}, {boards}, batch {self.batch_size})"
        threads = f"{self.threads} thread{'s' * (self.threads != 1)}"
        what = self.runtime
        if self.providers:
            what += " " + "+".join(p.removesuffix("ExecutionProvider") for p in self.providers)
        where = "" if self.device == "cpu" else f" on {self.torch_device}"
        return f"{self.name} ({what}{where}, {threads}, batch {self.batch_size})"

    def table_path(self) -> Path | None:
        """The table file of a ``table`` profile, relative paths resolved against the profile."""
        if self.table is None:
            return None
        path = Path(self.table).expanduser()
        if not path.is_absolute() and self.source:
            path = Path(self.source).parent / path
        return path

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runtime": self.runtime,
            "device": self.torch_device,
            "providers": list(self.providers),
            "threads": self.threads,
            "batch_size": self.batch_size,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "max_cv": self.max_cv,
            "clock": self.clock,
            **({"table": self.table} if self.table else {}),
            **({"servers": list(self.servers)} if self.servers else {}),
            **({"source": self.source} if self.source else {}),
        }


# -- loading --------------------------------------------------------------------------------
def _builtin_dir() -> Any:
    """The built-in profiles: package data when installed, ``device_profiles/`` in a checkout."""
    try:
        return importlib.resources.files("hwnas.device_profiles")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "device_profiles"


def builtin_names() -> list[str]:
    """Names of the built-in profiles, sorted."""
    root = _builtin_dir()
    try:
        return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))
    except FileNotFoundError:
        return []


def load_device(name_or_path: str | os.PathLike[str]) -> DeviceProfile:
    """The profile named ``name_or_path`` (built-in) or read from that TOML file.

    Raises :class:`DeviceError` for unknown names, unreadable files and invalid fields; the
    message names the file and the field.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".toml") or os.sep in text or "/" in text or path.is_file():
        if not path.is_file():
            raise DeviceError(f"device profile file '{text}' does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DeviceError(
                f"device profile file '{path}' is not readable TOML text ({exc}); give a "
                "profile .toml file (see device_profiles/)"
            ) from None
        return _parse(text, source=str(path.resolve()), default_name=path.stem)
    names = builtin_names()
    if text not in names:
        close = difflib.get_close_matches(text, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DeviceError(
            f"unknown device '{text}'{hint}; choose one of: {', '.join(names)}, "
            "or give the path of a profile .toml file"
        )
    resource = _builtin_dir() / f"{text}.toml"
    return _parse(resource.read_text(), source=str(resource), default_name=text)


def device_argument(profile: DeviceProfile) -> str:
    """What to pass as ``--device`` to get ``profile`` again: its name if built in, else its
    file."""
    if profile.name in builtin_names() and profile.source == str(
        _builtin_dir() / f"{profile.name}.toml"
    ):
        return profile.name
    return profile.source or profile.name


def list_devices() -> list[DeviceProfile]:
    """Every built-in profile (invalid ones raise: they are our bug)."""
    return [load_device(name) for name in builtin_names()]


class _ProfileFile(BaseModel):
    """The fields a profile file may hold, with their types and bounds."""

    model_config = ConfigDict(extra="forbid")

    name: _Text | None = None
    description: _Text | None = None
    runtime: Literal["torch", "onnxruntime", "remote", "table"] = "torch"
    device: Literal["cpu", "cuda"] = "cpu"
    device_index: Annotated[StrictInt, Field(ge=0)] = 0
    providers: list[StrictStr] | StrictStr | None = None
    provider: list[StrictStr] | StrictStr | None = None
    provider_options: dict[str, dict[str, Any]] | None = None
    threads: Annotated[StrictInt, Field(ge=1)] = 1
    batch_size: Annotated[StrictInt, Field(ge=1)] = 1
    input_shape: tuple[_Positive, _Positive, _Positive] | None = None
    warmup: Annotated[StrictInt, Field(ge=0)] = 10
    repeats: Annotated[StrictInt, Field(ge=1)] = 30
    max_cv: Annotated[float, Field(gt=0)] = 0.05
    clock: Literal["wall", "thread"] = "wall"
    table: _Text | None = None
    servers: list[StrictStr] | StrictStr | None = None
    token_env: _Text | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None


_HINTS = {
    "servers": "write a list of addresses http://HOST:PORT",
    "timeout": "a positive number of seconds",
    "input_shape": "write [channels, height, width]",
    "max_cv": "a positive number, 0.05 = 5%",
    "provider_options": "a table of tables, e.g. [provider_options.cuda]",
}


def _parse(text: str, *, source: str, default_name: str) -> DeviceProfile:
    from hwnas.config import loads_toml
    from hwnas.schema import validate

    try:
        data = loads_toml(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise DeviceError(f"{source}: not valid TOML: {exc}") from None

    def bad(key: str, why: str) -> DeviceError:
        return DeviceError(f"{source}: field '{key}' {why}")

    fields = validate(_ProfileFile, data, where=source, error=DeviceError, hints=_HINTS)
    given = fields.model_dump(exclude_unset=True, exclude={"provider", "providers", "servers"})
    values: dict[str, Any] = {"name": default_name, "source": source}
    values.update({k: v.strip() if isinstance(v, str) else v for k, v in given.items()})
    runtime, device = fields.runtime, fields.device
    if fields.servers is not None:
        values["servers"] = _servers(fields.servers, bad)
    values["providers"] = _providers(data, runtime, device, bad)
    if fields.clock == "thread" and (device != "cpu" or fields.threads != 1):
        raise bad(
            "clock",
            "'thread' times only single-threaded CPU inference; set device = \"cpu\" and "
            'threads = 1, or use clock = "wall"',
        )
    if fields.provider_options is not None:
        values["provider_options"] = {
            ORT_PROVIDERS.get(k.lower(), k): dict(v) for k, v in fields.provider_options.items()
        }
    if runtime == "table" and fields.table is None:
        raise bad("table", "is required for runtime 'table' (the latency table's file)")
    if runtime != "table" and fields.table is not None:
        raise bad("table", f"is only for runtime 'table', not '{runtime}'")
    if runtime == "remote" and not values.get("servers"):
        raise bad("servers", "is required for runtime 'remote', e.g. [\"http://10.0.0.7:8470\"]")
    if runtime != "remote" and "servers" in values:
        raise bad("servers", f"is only for runtime 'remote', not '{runtime}'")
    return DeviceProfile(**values)


def _servers(raw: Any, bad: Any) -> tuple[str, ...]:
    from hwnas.remote.client import normalize_url

    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(u, str) for u in raw):
        raise bad("servers", f"must be a list of addresses http://HOST:PORT, got {raw!r}")
    try:
        urls = [normalize_url(u) for u in raw]
    except ValueError as exc:
        raise bad("servers", str(exc)) from None
    return tuple(dict.fromkeys(urls))


def _providers(data: Mapping[str, Any], runtime: str, device: str, bad: Any) -> tuple[str, ...]:
    raw = data.get("providers", data.get("provider"))
    if runtime not in ONNX_RUNTIMES:
        if raw is not None:
            raise bad("providers", f"is only for runtime 'onnxruntime', not '{runtime}'")
        return ()
    if raw is None:
        raw = ["cuda", "cpu"] if device == "cuda" else ["cpu"]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        raise bad("providers", f"must be a list of provider names, got {raw!r}")
    names = []
    for p in raw:
        full = ORT_PROVIDERS.get(p.lower(), p)
        if not full.endswith("ExecutionProvider"):
            raise bad(
                "providers",
                f"has unknown provider {p!r}; use {', '.join(ORT_PROVIDERS)} or an onnxruntime "
                "name such as CUDAExecutionProvider",
            )
        names.append(full)
    if device == "cpu" and any(n in _GPU_PROVIDERS for n in names):
        raise bad("providers", "names a GPU provider but device is 'cpu'; set device = \"cuda\"")
    return tuple(dict.fromkeys(names))
