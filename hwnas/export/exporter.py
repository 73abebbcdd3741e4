"""Verified ONNX exports of a run's chosen trials (``hwnas export``, ``hwnas search --export``).

Each chosen trial's network is rebuilt with its trained weights, exported by torch's exporter
into one self-contained file with a symbolic batch axis, and verified (onnx's full check;
onnxruntime against PyTorch on random and on validation inputs, see :mod:`hwnas.export.verify`);
a file that passes is timed on the run's device with onnxruntime and, with ``int8``, quantised
(:mod:`hwnas.export.int8`). Results go to the run's ``exports/``:

- ``NAME.onnx`` and ``NAME.json`` (genotype, metrics, input and preprocessing, verification,
  latency, versions) when the export passed; ``NAME.int8.onnx`` with ``int8``;
- ``NAME.failed.json`` with the reason, and no ``.onnx``, when it did not.

Files are written to a temporary name and renamed, so a killed export never leaves half a file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import hwnas.rundir as rundir
from hwnas._version import __version__
from hwnas.errors import ConfigError, HwnasError
from hwnas.export.files import (
    INPUT_NAME,
    OUTPUT_NAME,
    ExportResult,
    io_json,
    now,
    onnx_json,
    value_json,
    versions,
    write_export,
)
from hwnas.export.notes import int8_slower_note
from hwnas.export.verify import (
    ATOL,
    RTOL,
    Comparison,
    ExportFailure,
    check_onnx,
    compare_outputs,
    cpu_session,
    export_quietly,
    first_line,
    run_session,
    run_torch,
    verification_json,
)
from hwnas.types import Measurement, Trial

if TYPE_CHECKING:
    from torch import nn

    from hwnas.devices import DeviceProfile
    from hwnas.results import SearchResult
    from hwnas.selection import Selection

__all__ = ["ExportResult", "choose_trials", "export_model", "export_run"]

OPSET = 17
RANDOM_INPUTS = 32
VALIDATION_SAMPLES = 256
CALIBRATION_SAMPLES = 128
EXPORTS = rundir.EXPORTS
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


# -- a run ------------------------------------------------------------------------------------
def export_run(
    run_dir: str | os.PathLike[str],
    *,
    select: str = "knee",
    constraints: Sequence[str] = (),
    int8: bool = False,
    name: str | None = None,
    device: str | None = None,
    samples: int = VALIDATION_SAMPLES,
    calibration_samples: int = CALIBRATION_SAMPLES,
    opset: int = OPSET,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> list[ExportResult]:
    """Export the trials ``select`` chooses (``knee``, ``front``, ``best:METRIC``, ``trial:N``),
    among those meeting ``constraints`` (``"latency<=5ms"``) as well as the run's own.

    ``name`` names the files (default: the selection, e.g. ``knee``; with several trials each
    gets ``-trial-NNNNN``); ``device`` the profile the ONNX files are timed on (default: the
    run's, with onnxruntime); ``samples`` validation images compared, ``calibration_samples``
    training images for ``int8``. Verification failures are results, not exceptions; bad
    arguments raise :class:`ConfigError`, a missing run :class:`RunError`.
    """
    from hwnas.export.source import RunSource
    from hwnas.results import read_run
    from hwnas.selection import parse_selection

    selection = parse_selection(select)
    if name is not None:
        _check_name(name)
    for value, what in ((samples, "samples"), (calibration_samples, "calibration samples")):
        if value < 0:
            raise ConfigError(f"the number of {what} must be at least 0, not {value}")
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    chosen = choose_trials(run, selection, constraints)
    source = RunSource(run_dir, run.config)
    profile, note = source.profile(device)
    validation = source.validation(samples)
    results = []
    for trial in chosen:
        built = source.build(trial)
        calibration = (
            source.calibration(max(calibration_samples, 1), built.input_shape) if int8 else None
        )
        info = {
            "trial": trial.number,
            "selection": str(selection),
            "genotype": trial.genotype.to_json(),
            "space": {"name": run.config.space, "options": dict(run.config.space_options)},
            "weights": built.weights,
            "metrics": {k: value_json(m) for k, m in sorted(trial.measurements.items())},
        }
        if source.data_note is not None:
            info["data_note"] = source.data_note
        results.append(
            export_model(
                built.model,
                name=_name_for(selection, trial, name, several=len(chosen) > 1),
                out_dir=run_dir / EXPORTS,
                input_shape=built.input_shape,
                preprocessing=built.preprocessing,
                validation=validation,
                calibration=calibration,
                profile=profile,
                int8=int8,
                info=info,
                search_latency=trial.measurements.get("latency"),
                latency_note=note,
                opset=opset,
                atol=atol,
                rtol=rtol,
                seed=run.config.seed,
            )
        )
    return results


def choose_trials(
    run: SearchResult, selection: Selection, constraints: Sequence[str] = ()
) -> list[Trial]:
    """The run's trials ``selection`` picks; extra ``constraints`` narrow the front first."""
    from hwnas.objectives.base import parse_constraint
    from hwnas.objectives.resolve import resolve_objectives
    from hwnas.results import compute_front
    from hwnas.selection import select_trials

    front = run.front
    if not constraints:
        return select_trials(selection, run.trials, front, front.constraints)
    parsed = [parse_constraint(c) for c in constraints]
    extra = resolve_objectives([], parsed, front.units)[1]
    measured = {m for t in run.trials for m in t.measurements}
    for c in extra:
        if c.metric not in measured:
            raise ConfigError(
                f"no trial of this run has metric '{c.metric}'; constrain one of: "
                f"{', '.join(sorted(measured)) or 'none (no trial completed)'}"
            )
    combined = [*front.constraints, *extra]
    front = compute_front(run.trials, front.objectives, combined, front.units)
    try:
        return select_trials(selection, run.trials, front, combined)
    except ConfigError as exc:
        if selection.kind == "trial":
            raise
        raise ConfigError(
            f"{exc} (with {', '.join(constraints)} on top of the run's own constraints)"
        ) from None


def _name_for(selection: Selection, trial: Trial, name: str | None, *, several: bool) -> str:
    if name is None:
        if selection.kind == "knee":
            name = "knee"
        elif selection.kind == "best":
            name = f"best-{selection.metric}"
        else:
            return f"trial-{trial.number:05d}"
    return f"{name}-trial-{trial.number:05d}" if several else name


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or ".." in name or name.endswith((".failed", ".int8")):
        raise ConfigError(
            f"bad export name '{name}': use letters, digits, '_', '-' and '.', starting with a "
            "letter or digit (the files go to RUN_DIR/exports/NAME.onnx)"
        )


# -- one model --------------------------------------------------------------------------------
def export_model(
    model: nn.Module,
    *,
    name: str,
    out_dir: str | os.PathLike[str],
    input_shape: Sequence[int],
    preprocessing: Mapping[str, Any] | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    calibration: tuple[np.ndarray, str] | None = None,
    profile: DeviceProfile | None = None,
    int8: bool = False,
    info: Mapping[str, Any] | None = None,
    search_latency: Measurement | None = None,
    latency_note: str | None = None,
    opset: int = OPSET,
    atol: float = ATOL,
    rtol: float = RTOL,
    random_inputs: int = RANDOM_INPUTS,
    seed: int = 0,
) -> ExportResult:
    """Export ``model`` (a classifier taking ``(N, *input_shape)``) to ``out_dir/NAME.onnx`` and
    verify it; see the module docstring.

    ``validation``: normalised images and labels to compare on; ``calibration``: int8
    calibration inputs and what they are (default: 128 random normal inputs); ``profile``:
    where to time the file (None: not timed); ``info``: fields written into the JSON as they
    are (trial, genotype, metrics ...). Export and comparison run on the CPU (a model on
    another device is copied there).
    """
    _check_name(name)
    out_dir = Path(out_dir)
    if any(p.device.type != "cpu" for p in model.parameters()):
        import copy

        model = copy.deepcopy(model).to("cpu")
    if int8 and calibration is None:
        shape = (CALIBRATION_SAMPLES, *input_shape)
        inputs = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        calibration = (inputs, f"{CALIBRATION_SAMPLES} random normal inputs (none given)")
    record: dict[str, Any] = {"name": name, **dict(info or {})}
    comparisons: list[Comparison] = []
    checker, data, proto = False, b"", None
    try:
        data = export_quietly(
            model, input_shape, opset=opset, input_name=INPUT_NAME, output_name=OUTPUT_NAME
        )
        proto = check_onnx(data)
        checker = True
        session = cpu_session(data)
        x = np.random.default_rng(seed).standard_normal(
            (random_inputs, *input_shape), dtype=np.float32
        )
        tolerance = {"atol": atol, "rtol": rtol}
        comparisons.append(
            compare_outputs(
                run_torch(model, x),
                run_session(session, x),
                key="random",
                inputs="random normal",
                **tolerance,
            )
        )
        if validation is not None:
            images, labels = validation
            comparisons.append(
                compare_outputs(
                    run_torch(model, images),
                    run_session(session, images),
                    key="validation",
                    inputs="validation split",
                    labels=labels,
                    **tolerance,
                )
            )
        reason = next((c.reason() for c in comparisons if not c.passed), None)
    except ExportFailure as exc:
        reason = str(exc)
    if proto is not None:
        record["input"], record["output"] = io_json(proto, preprocessing)
        record["onnx"] = onnx_json(proto, data, name)
    record["verification"] = verification_json(
        comparisons, checker=checker, reason=reason, atol=atol, rtol=rtol
    )
    int8_data = None
    if reason is None:
        if int8:
            from hwnas.export.int8 import int8_report

            assert calibration is not None  # defaulted above
            int8_data, record["int8"] = int8_report(data, calibration, validation, out_dir, seed)
        record["latency"] = _latency(
            data, int8_data, profile, input_shape, search_latency, latency_note
        )
        if int8_data is not None:
            record["int8"]["latency"] = record["latency"].pop("int8", None)
            slower = int8_slower_note(record["int8"]["latency"])
            if slower:
                record["int8"]["note"] = slower
    record["hwnas_version"] = __version__
    record["versions"] = versions()
    record["created"] = now()
    return write_export(out_dir, name, record, data if reason is None else None, int8_data)


def _latency(
    fp32: bytes,
    int8: bytes | None,
    profile: DeviceProfile | None,
    input_shape: Sequence[int],
    search: Measurement | None,
    note: str | None,
) -> dict[str, Any]:
    """``{"onnx": ..., "search_time": ...}`` and, with ``int8``, ``"int8"`` (timed interleaved)."""
    from hwnas.profilers.ort import measure_onnx_latencies

    data: dict[str, Any] = {"onnx": None}
    if search is not None:
        data["search_time"] = value_json(search)
    if profile is None:
        data["note"] = "not timed (no device profile given)"
        return data

    def measure(models: list[bytes]) -> list[Measurement] | str:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a wide spread is recorded in the measurement
                return measure_onnx_latencies(models, profile, input_shape)
        except HwnasError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a provider failing on a file is a result
            return f"onnxruntime could not run the file on '{profile.name}': {first_line(exc)}"

    measured = measure([fp32] if int8 is None else [fp32, int8])
    if isinstance(measured, str) and int8 is not None:
        # The int8 file may be what the device cannot run: time the float file alone.
        data["int8"] = {"error": measured}
        int8, measured = None, measure([fp32])
    if isinstance(measured, str):
        data["error"] = measured
        return data
    data["onnx"] = {**value_json(measured[0]), "device": profile.name}
    data["onnx_stats"] = dict(measured[0].stats)
    if measured[0].env.get("warning"):
        data["warning"] = measured[0].env["warning"]
    data["profile"] = profile.to_json()
    if note:
        data["note"] = note
    if int8 is not None:
        data["int8"] = {
            "fp32": {**value_json(measured[0]), "device": profile.name},
            "int8": {**value_json(measured[1]), "device": profile.name},
            "speedup": measured[0].value / measured[1].value if measured[1].value else None,
            "protocol": "both files timed interleaved on the same profile",
        }
    return data
