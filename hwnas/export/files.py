"""The files of an export: its JSON record and the atomic writes of ``exports/NAME.*``."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas._version import __version__
from hwnas.export.verify import exporter_of, opset_of
from hwnas.rundir import write_unit
from hwnas.types import Measurement

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "ExportResult",
    "io_json",
    "now",
    "onnx_json",
    "value_json",
    "versions",
    "write_export",
]

INPUT_NAME = "input"
OUTPUT_NAME = "output"
#: Key order of the JSON files: what the model is, then how it was checked and measured.
_ORDER = (
    "name", "trial", "selection", "genotype", "space", "weights", "metrics", "input", "output",
    "onnx", "verification", "latency", "int8", "hwnas_version", "versions", "created",
)  # fmt: skip


@dataclass
class ExportResult:
    """One exported (or failed) model; ``record`` is what its JSON file holds."""

    name: str
    trial: int | None
    passed: bool
    reason: str | None
    json_path: Path
    onnx_path: Path | None
    int8_path: Path | None
    record: dict[str, Any]

    @property
    def max_abs_diff(self) -> float | None:
        return self.record.get("verification", {}).get("max_abs_diff")

    @property
    def top1_agreement(self) -> float | None:
        return self.record.get("verification", {}).get("top1_agreement")

    @property
    def latency(self) -> Mapping[str, Any] | None:
        """``{"value", "unit", "device"}`` of the ONNX file, when it was timed."""
        return (self.record.get("latency") or {}).get("onnx")


def io_json(
    proto: Any, preprocessing: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    def dims(value: Any) -> list[Any]:
        shape = value.type.tensor_type.shape.dim
        return [d.dim_param if d.dim_param else int(d.dim_value) for d in shape]

    inp, out = proto.graph.input[0], proto.graph.output[0]
    return (
        {
            "name": inp.name,
            "shape": dims(inp),
            "dtype": "float32",
            "layout": "NCHW",
            "preprocessing": dict(preprocessing or {}),
        },
        {
            "name": out.name,
            "shape": dims(out),
            "dtype": "float32",
            "meaning": "class scores (logits); softmax gives probabilities",
        },
    )


def onnx_json(proto: Any, data: bytes, name: str) -> dict[str, Any]:
    return {
        "file": f"{name}.onnx",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "opset": opset_of(proto),
        "ir_version": int(proto.ir_version),
        "exporter": f"torch.onnx ({exporter_of(proto)})",
        "dynamic_axes": {INPUT_NAME: {"0": "batch"}, OUTPUT_NAME: {"0": "batch"}},
        "self_contained": not any(t.external_data for t in proto.graph.initializer),
    }


def value_json(m: Measurement) -> dict[str, Any]:
    out: dict[str, Any] = {"value": m.value, "unit": m.unit}
    if m.device is not None:
        out["device"] = m.device
    return out


def versions() -> dict[str, str]:
    import importlib.metadata
    import platform

    versions = {"hwnas": __version__, "python": platform.python_version()}
    for package in ("torch", "onnx", "onnxruntime"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# -- files ------------------------------------------------------------------------------------
def write_export(
    out_dir: Path, name: str, record: dict[str, Any], onnx: bytes | None, int8: bytes | None
) -> ExportResult:
    """Write a passed export's files (or a failed one's JSON) as one unit (see
    :func:`hwnas.rundir.write_unit`: the JSON is written last and removed first, so a kill never
    leaves a JSON describing other files), removing stale counterparts and temporaries."""
    out_dir = Path(out_dir)
    # Records first: a record is removed before the files it describes (see write_unit).
    paths = {
        "json": out_dir / f"{name}.json",
        "failed": out_dir / f"{name}.failed.json",
        "onnx": out_dir / f"{name}.onnx",
        "int8": out_dir / f"{name}.int8.onnx",
    }
    passed = onnx is not None
    files: dict[str, bytes | None] = {p.name: None for p in paths.values()}
    if passed:
        files[paths["onnx"].name] = onnx
        if int8 is not None:
            files[paths["int8"].name] = int8
            record["int8"]["file"] = paths["int8"].name
        json_path = paths["json"]
    else:
        json_path = paths["failed"]
        if "onnx" in record:
            record["onnx"]["file"] = None  # exported, but not written: it failed verification
    ordered = {k: record[k] for k in _ORDER if k in record}
    ordered.update((k, v) for k, v in record.items() if k not in ordered)
    text = json.dumps(_jsonable(ordered), indent=2, allow_nan=False) + "\n"
    files[json_path.name] = text.encode()
    write_unit(out_dir.parent, out_dir.name, files, commit=json_path.name)
    verification = record["verification"]
    return ExportResult(
        name=name,
        trial=record.get("trial"),
        passed=passed,
        reason=verification.get("reason"),
        json_path=json_path,
        onnx_path=paths["onnx"] if passed else None,
        int8_path=paths["int8"] if passed and int8 is not None else None,
        record=record,
    )


def _jsonable(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (strict JSON has no nan)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
