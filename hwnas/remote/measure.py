"""What the device server runs: ONNX bytes timed with onnxruntime, interleaved.

The same protocol as a local measurement (``hwnas.profilers.ort`` and
``hwnas.profilers.base.time_interleaved``): sessions with every graph optimisation, sequential,
``intra_op_num_threads`` from the request, inputs bound once (IOBinding), each workload warmed
up, then rounds in which every model runs once in a fresh random order, each timed run
preceded by one untimed run when several models are interleaved. Standard library, numpy and
onnxruntime only: this module runs on the board.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["MeasureError", "TooSlow", "board_env", "measure_models", "summarize"]


class MeasureError(ValueError):
    """The request cannot be measured (not ONNX, wrong shape, unknown provider)."""


class TooSlow(MeasureError):
    """Measuring would exceed (or has exceeded) the server's run-time limit."""


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, p10, p90, mean, min, cv, robust cv (1.4826 MAD / median) and n; as
    ``hwnas.profilers.base.summarize``."""
    x = np.asarray(samples, dtype=float)
    median = float(np.median(x))
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    mad = float(np.median(np.abs(x - median)))
    return {
        "median": median,
        "p10": float(np.percentile(x, 10)),
        "p90": float(np.percentile(x, 90)),
        "mean": mean,
        "min": float(x.min()),
        "cv": std / mean if mean > 0 else float("nan"),
        "rcv": 1.4826 * mad / median if median > 0 else float("nan"),
        "n": float(x.size),
    }


@functools.cache
def cpu_name() -> str:
    """The CPU's model (``/proc/cpuinfo``), or the board's model on ARM boards."""
    found = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                found.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    for key in ("model name", "hardware", "model", "cpu model"):
        if found.get(key):
            return found[key]
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def _board_model() -> str:
    try:  # Raspberry Pi, Jetson and other device-tree boards name themselves here
        with open("/proc/device-tree/model", "rb") as f:
            return f.read().rstrip(b"\0").decode(errors="replace").strip()
    except OSError:
        return ""


def board_env(name: str) -> dict[str, Any]:
    """The board: its name, hardware and library versions."""
    import onnxruntime as ort

    env = {
        "board": name,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "available_providers": list(ort.get_available_providers()),
    }
    if _board_model():
        env["board_model"] = _board_model()
    return env


class _Workload:
    """One session with its input bound; ``timed()`` returns milliseconds."""

    def __init__(self, index: int, model: bytes, s: Mapping[str, Any]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = s["threads"]
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        missing = [p for p in s["providers"] if p not in ort.get_available_providers()]
        if missing:
            raise MeasureError(
                f"onnxruntime {ort.__version__} on this board has no {', '.join(missing)}; it "
                f"has {', '.join(ort.get_available_providers())}"
            )
        providers = [
            (p, dict(s["provider_options"][p])) if p in s["provider_options"] else p
            for p in s["providers"]
        ]
        try:
            self.session = ort.InferenceSession(model, options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MeasureError(
                f"model {index} is not an ONNX model onnxruntime can load: {first[:300]}"
            ) from None
        inputs = self.session.get_inputs()
        on_gpu = any(p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") for p in providers)
        where = "cuda" if on_gpu else "cpu"
        self.binding = self.session.io_binding()
        if inputs:
            shape = _shape(index, inputs[0].shape, s["input_shape"], s["batch_size"])
            x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
            self._input = ort.OrtValue.ortvalue_from_numpy(x, where, 0)
            self.binding.bind_ortvalue_input(inputs[0].name, self._input)
        else:  # the output ignores the input (the exporter dropped it)
            shape = (s["batch_size"], *(s["input_shape"] or ()))
        for output in self.session.get_outputs():
            self.binding.bind_output(output.name, where, 0)
        self.shape = shape
        self._on_gpu = on_gpu
        self._clock = time.thread_time_ns if s["clock"] == "thread" else time.perf_counter_ns

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def timed(self) -> float:
        start = self._clock()
        self.session.run_with_iobinding(self.binding)
        if self._on_gpu:
            self.binding.synchronize_outputs()
        return (self._clock() - start) / 1e6


def _shape(
    index: int, declared: Sequence[Any], input_shape: Sequence[int] | None, batch: int
) -> tuple[int, ...]:
    if input_shape is not None:
        wanted = (batch, *input_shape)
        if len(wanted) == len(declared) and all(
            not isinstance(d, int) or d == w for d, w in zip(declared, wanted)
        ):
            return tuple(int(w) for w in wanted)
        raise MeasureError(f"model {index} takes input {list(declared)}, not {list(wanted)}")
    if not all(isinstance(d, int) for d in declared[1:]):
        raise MeasureError(f"model {index}'s input {list(declared)} is symbolic; send input_shape")
    first = declared[0] if isinstance(declared[0], int) else batch
    return (first, *(int(d) for d in declared[1:]))


def measure_models(
    models: Sequence[bytes],
    settings: Mapping[str, Any],
    *,
    max_seconds: float,
    simulate_ms: float = 0.0,
    progress: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """``[{"samples": [ms, ...], "stats": {...}, "input_shape": [...]}]`` per model.

    Raises :class:`MeasureError` for models that cannot run and :class:`TooSlow` when the
    warm-up shows the request would take more than ``max_seconds`` (or it does). ``simulate_ms``
    waits that long per model, untimed: a slower board for tests and demonstrations.
    """
    start = time.perf_counter()
    workloads = [_Workload(i, m, settings) for i, m in enumerate(models)]
    warmup, repeats = settings["warmup"], settings["repeats"]
    rewarm = 1 if len(workloads) > 1 else 0
    for w in workloads:
        first = time.perf_counter()
        w.run()
        per_run = time.perf_counter() - first
        # A request that would run for hours must fail now, not hold the board.
        projected = per_run * (warmup + repeats * (1 + rewarm)) * len(workloads)
        if projected > 2 * max_seconds:
            raise TooSlow(
                f"measuring would take about {projected:.0f} s, more than this server's limit "
                f"of {max_seconds:.0f} s; lower repeats or start the server with --max-seconds"
            )
        for _ in range(max(warmup - 1, 0)):
            w.run()
        if simulate_ms:
            time.sleep(simulate_ms / 1000)
    rng = np.random.default_rng(settings["seed"])
    samples: list[list[float]] = [[] for _ in workloads]
    for _ in range(repeats):
        for i in rng.permutation(len(workloads)):
            for _ in range(rewarm):
                workloads[i].run()
            samples[i].append(workloads[i].timed())
        if time.perf_counter() - start > max_seconds:
            raise TooSlow(
                f"measuring took more than this server's limit of {max_seconds:.0f} s; lower "
                "repeats or start the server with a larger --max-seconds"
            )
        if progress is not None:
            progress()
    return [
        {"samples": s, "stats": summarize(s), "input_shape": list(w.shape)}
        for s, w in zip(samples, workloads)
    ]
