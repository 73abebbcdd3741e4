"""Exporting a network to ONNX quietly, and checking the file against the PyTorch network.

A file passes when onnx's checker accepts it (``full_check``: types and shapes inferred through
the whole graph) and onnxruntime's outputs match PyTorch's on every input of every batch:
``|onnx - torch| <= atol + rtol * max|torch|`` for every output, where the maximum is over the
outputs of the same input, with the same top-1 class for 100% of the inputs. The relative term
matters only for large logits: a freshly initialised network without trained batch-norm
statistics can produce logits of 1e5, where float32 rounding alone (PyTorch against a float64
reference) differs by 0.04.

onnxruntime runs on its CPU provider with every graph optimisation (what a deployment runs),
one thread, so the numbers are the same on every machine.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ATOL",
    "RTOL",
    "Comparison",
    "ExportFailure",
    "check_onnx",
    "compare_outputs",
    "cpu_session",
    "export_quietly",
    "exporter_of",
    "first_line",
    "opset_of",
    "run_session",
    "run_torch",
    "verification_json",
]

ATOL = 1e-4
RTOL = 1e-5
#: Inputs per forward pass when comparing (bounds memory for large validation sets).
CHUNK = 64


class ExportFailure(Exception):
    """A step of export or verification failed; ``str()`` is the one-line reason."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first non-empty line of the message``, shortened: a reason fit for one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    # The dynamo exporter colours its messages for terminals.
    text = text.replace("\x1b[96m", "").replace("\x1b[0m", "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Silence stdout and stderr at the file-descriptor level.

    The TorchScript exporter prints the whole graph from C++ when it fails, and the dynamo
    exporter prints its progress; neither helps a user who gets our one-line reason.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved: list[tuple[int, int]] = []
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                except OSError:  # no such descriptor (a daemon): nothing to silence
                    continue
                os.dup2(sink.fileno(), fd)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def export_quietly(
    model: nn.Module, input_shape: Sequence[int], *, opset: int, input_name: str, output_name: str
) -> bytes:
    """The ONNX file of ``model`` with a symbolic batch dimension (see
    :func:`hwnas.profilers.ort.export_onnx_bytes`: TorchScript exporter, dynamo as fallback).

    Raises :class:`ExportFailure` with the exporter's reason.
    """
    from hwnas.profilers.ort import export_onnx_bytes

    try:
        with quiet_output():
            return export_onnx_bytes(
                model,
                input_shape,
                batch_size=1,
                opset=opset,
                dynamic_batch=True,
                input_name=input_name,
                output_name=output_name,
            )
    except Exception as exc:  # noqa: BLE001 - any exporter error means the same to a user
        raise ExportFailure(
            f"torch's ONNX exporters (TorchScript, then dynamo) cannot export this network: "
            f"{first_line(exc)}"
        ) from None


def opset_of(proto: Any) -> int | None:
    """The default-domain opset of an ONNX model."""
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def exporter_of(proto: Any) -> str:
    """``dynamo`` or ``torchscript``: the dynamo exporter tags nodes with ``pkg.torch.onnx``."""
    for node in proto.graph.node:
        if any(p.key.startswith("pkg.torch.onnx") for p in node.metadata_props):
            return "dynamo"
    return "torchscript"


def check_onnx(data: bytes) -> Any:
    """The parsed model; ExportFailure unless onnx's full check accepts it."""
    import onnx

    try:
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001 - checker, parser and shape inference errors
        raise ExportFailure(f"onnx checker rejects the file: {first_line(exc)}") from None
    return proto


def cpu_session(model: bytes | str | os.PathLike[str]) -> Any:
    """An onnxruntime session on the CPU provider, all graph optimisations, one thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ExportFailure(f"onnxruntime cannot load the file: {first_line(exc)}") from None


def run_session(session: Any, inputs: np.ndarray) -> np.ndarray:
    """The first output for ``inputs``, in chunks (also exercises the dynamic batch axis)."""
    name = session.get_inputs()[0].name
    try:
        parts = [
            session.run(None, {name: inputs[i : i + CHUNK]})[0]
            for i in range(0, len(inputs), CHUNK)
        ]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ExportFailure(f"onnxruntime fails to run the file: {first_line(exc)}") from None
    return np.concatenate(parts).astype(np.float32, copy=False)


def run_torch(model: nn.Module, inputs: np.ndarray) -> np.ndarray:
    """The network's output for ``inputs`` (eval mode, CPU, float32)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [
                model(torch.from_numpy(np.ascontiguousarray(inputs[i : i + CHUNK]))).numpy()
                for i in range(0, len(inputs), CHUNK)
            ]
    finally:
        model.train(was_training)
    return np.concatenate(parts).astype(np.float32, copy=False)


@dataclass
class Comparison:
    """onnxruntime against PyTorch on one set of inputs; ``accuracy`` in % (with labels)."""

    key: str  # "random" or "validation": its name in the JSON file
    inputs: str  # what they were, in words
    n: int
    max_abs_diff: float
    worst_ratio: float  # max |diff| / (atol + rtol max|torch|): <= 1 passes
    top1_agreement: float  # fraction of inputs with the same top-1 class
    nonfinite: bool
    atol: float
    rtol: float
    accuracy: dict[str, float] = field(default_factory=dict)  # "torch", "onnx": % correct
    min_margin_where_differs: float | None = None

    @property
    def passed(self) -> bool:
        return not self.nonfinite and self.worst_ratio <= 1.0 and self.top1_agreement == 1.0

    def reason(self) -> str | None:
        """Why it failed, in one line (None when it passed)."""
        if self.nonfinite:
            return f"non-finite outputs (nan or inf) on the {self.inputs} inputs"
        if self.worst_ratio > 1.0:
            return (
                f"onnxruntime differs from PyTorch by up to {self.max_abs_diff:.3g} on the "
                f"{self.inputs} inputs (allowed: {self.atol:g} + {self.rtol:g} * max |output|)"
            )
        if self.top1_agreement < 1.0:
            differs = round((1.0 - self.top1_agreement) * self.n)
            margin = self.min_margin_where_differs
            tie = (
                f"; PyTorch's top-2 margin there is only {margin:.3g} (a near-tie)"
                if margin is not None and margin <= self.atol + self.max_abs_diff
                else ""
            )
            return f"the top-1 class differs on {differs} of {self.n} {self.inputs} inputs{tie}"
        return None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "inputs": self.inputs,
            "n": self.n,
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "worst_tolerance_ratio": self.worst_ratio,
            "top1_agreement": self.top1_agreement,
        }
        if self.accuracy:
            data["accuracy"] = {k: {"value": v, "unit": "%"} for k, v in self.accuracy.items()}
        return data


def compare_outputs(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    key: str,
    inputs: str,
    atol: float = ATOL,
    rtol: float = RTOL,
    labels: np.ndarray | None = None,
) -> Comparison:
    """Compare ``candidate`` (onnxruntime) with ``reference`` (PyTorch) outputs ``[N, classes]``."""
    reference = reference.reshape(len(reference), -1).astype(np.float64)
    candidate = candidate.reshape(len(candidate), -1).astype(np.float64)
    nonfinite = not (np.isfinite(reference).all() and np.isfinite(candidate).all())
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(candidate - reference)
        # Relative to each input's largest output: a logit near zero among large ones is the
        # difference of large numbers, and float32 rounds it relative to them.
        scale = np.abs(reference).max(axis=1, keepdims=True) if reference.size else 0.0
        ratio = diff / (atol + rtol * scale)
    max_abs = float(np.nanmax(diff)) if diff.size and not nonfinite else float("nan")
    worst = float(np.nanmax(ratio)) if ratio.size and not nonfinite else float("inf")
    ref_top, cand_top = reference.argmax(axis=1), candidate.argmax(axis=1)
    same = ref_top == cand_top
    margin = None
    if not same.all():
        rows = np.flatnonzero(~same)
        gaps = reference[rows, ref_top[rows]] - reference[rows, cand_top[rows]]
        margin = float(gaps.min())
    accuracy: dict[str, float] = {}
    if labels is not None:
        accuracy = {
            "torch": float((ref_top == labels).mean() * 100.0),
            "onnx": float((cand_top == labels).mean() * 100.0),
        }
    return Comparison(
        key=key,
        inputs=inputs,
        n=len(reference),
        max_abs_diff=max_abs,
        worst_ratio=worst,
        top1_agreement=float(same.mean()) if len(same) else 1.0,
        nonfinite=nonfinite,
        atol=atol,
        rtol=rtol,
        accuracy=accuracy,
        min_margin_where_differs=margin,
    )


def verification_json(
    comparisons: Sequence[Comparison],
    *,
    checker: bool,
    reason: str | None,
    atol: float,
    rtol: float,
) -> dict[str, Any]:
    """The ``verification`` object of an export's JSON file."""
    done = [c for c in comparisons if c.n]
    finite = [c.max_abs_diff for c in done if not c.nonfinite]
    data: dict[str, Any] = {
        "passed": reason is None,
        "reason": reason,
        "checker": "passed (onnx.checker, full_check)" if checker else "not reached",
        "runtime": "onnxruntime CPUExecutionProvider, all graph optimisations, 1 thread",
        "tolerance": {
            "atol": atol,
            "rtol": rtol,
            "rule": (
                "|onnx - torch| <= atol + rtol * max|torch| (max over the outputs of the same "
                "input); top-1 agreement 100%"
            ),
        },
        "max_abs_diff": max(finite) if finite else None,
        "top1_agreement": min((c.top1_agreement for c in done), default=None),
    }
    for c in comparisons:
        data[c.key] = c.to_json()
    return data
