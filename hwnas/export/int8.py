"""Static int8 quantisation of an exported ONNX file with onnxruntime's tools.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantised operator, which every
onnxruntime provider and TensorRT understand), uint8 activations and int8 weights per output
channel (onnxruntime's recommended setting for CPUs), activation ranges from min/max
calibration on real inputs. The file first goes through onnxruntime's quantisation
pre-processing (graph optimisation, shape inference), as its documentation recommends.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from hwnas.export.verify import (
    ExportFailure,
    check_onnx,
    compare_outputs,
    cpu_session,
    first_line,
    run_session,
)
from hwnas.rundir import TMP_PREFIX, open_dir

__all__ = ["INT8_SETTINGS", "int8_report", "quantize_int8", "temporary_dir"]

INT8_SETTINGS = {
    "method": "onnxruntime.quantization.quantize_static",
    "format": "QDQ",
    "activations": "uint8",
    "weights": "int8, per channel",
    "calibration": "MinMax",
}
#: Calibration inputs per batch the data reader hands out.
CALIBRATION_BATCH = 16


class _Reader(CalibrationDataReader):
    """Calibration inputs from an array, in batches."""

    def __init__(self, inputs: np.ndarray, input_name: str) -> None:
        self._batches = iter(
            [
                {input_name: np.ascontiguousarray(inputs[i : i + CALIBRATION_BATCH])}
                for i in range(0, len(inputs), CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(fp32: bytes, calibration: np.ndarray, *, work_dir: Path) -> bytes:
    """The int8 QDQ model of the float ONNX file ``fp32`` (checked by onnx's full check).

    ``work_dir`` receives the intermediate files. Raises ExportFailure with the reason.
    """
    source, prepared, output = (work_dir / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
    source.write_bytes(fp32)
    reader = _Reader(calibration, _input_name(fp32))
    try:
        with _quiet_logging():
            # Symbolic shape inference cannot follow the Reshape of a flattening head with a
            # symbolic batch; onnx's own shape inference (kept) suffices for quantisation.
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(output),
                reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
            )
    except Exception as exc:  # noqa: BLE001 - any quantisation error is reported, not raised
        raise ExportFailure(f"int8 quantisation failed: {first_line(exc)}") from None
    data = output.read_bytes()
    check_onnx(data)
    return data


def _input_name(model: bytes) -> str:
    import onnx

    return onnx.load_from_string(model).graph.input[0].name


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """onnxruntime's quantisation tools log per-tensor warnings on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def temporary_dir(parent: Path) -> Any:
    """A scratch directory inside ``parent`` (the run's exports/), removed afterwards."""
    with open_dir(parent.parent, parent.name):  # refuses exports/ as a symlink out of the run
        pass
    return tempfile.TemporaryDirectory(dir=parent, prefix=TMP_PREFIX)


def int8_report(
    fp32: bytes,
    calibration: tuple[np.ndarray, str],
    validation: tuple[np.ndarray, np.ndarray] | None,
    out_dir: Path,
    seed: int,
) -> tuple[bytes | None, dict[str, Any]]:
    """The int8 file (None when quantisation failed) and its JSON record (latency is timed
    later, interleaved with the float file). Accuracy is measured on ``validation``."""
    inputs, described = calibration
    report: dict[str, Any] = {"settings": INT8_SETTINGS, "calibration": described}
    try:
        with temporary_dir(out_dir) as work:
            data = quantize_int8(fp32, inputs, work_dir=Path(work))
        fp32_session, int8_session = cpu_session(fp32), cpu_session(data)
        if validation is not None:
            x, labels, what = validation[0], validation[1], "validation split"
        else:
            shape = inputs.shape[1:]
            x = np.random.default_rng(seed + 1).standard_normal((64, *shape), dtype=np.float32)
            labels, what = None, "random normal"
        before, after = run_session(fp32_session, x), run_session(int8_session, x)
    except ExportFailure as exc:
        return None, {**report, "written": False, "error": str(exc)}
    agreement = compare_outputs(before, after, key="int8", inputs=what, labels=labels)
    report.update(
        {
            "written": True,
            "size": {
                "fp32": {"value": len(fp32), "unit": "B"},
                "int8": {"value": len(data), "unit": "B"},
                "ratio": len(data) / len(fp32),
            },
            "compared_on": f"{agreement.n} {what} inputs",
            "top1_agreement_with_fp32": agreement.top1_agreement,
            "max_abs_diff_vs_fp32": agreement.max_abs_diff,
        }
    )
    if agreement.accuracy:
        report["accuracy"] = {
            "fp32": {"value": agreement.accuracy["torch"], "unit": "%"},
            "int8": {"value": agreement.accuracy["onnx"], "unit": "%"},
            "samples": agreement.n,
        }
    else:
        report["accuracy"] = None
        report["accuracy_note"] = "the run has no dataset: no labelled images to measure on"
    return data, report
