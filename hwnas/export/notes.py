"""What an export's numbers do not say by themselves: untrained weights, an int8 file that is
slower than the float one. Shared by the export record and the console."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_untrained(record: Mapping[str, Any]) -> bool:
    """True when the exported network has freshly initialised weights (a table run)."""
    return (record.get("weights") or {}).get("source") == "initialised"


def untrained_note(record: Mapping[str, Any]) -> str | None:
    if not is_untrained(record):
        return None
    return (
        "UNTRAINED: freshly initialised weights (the run trained nothing); verification only "
        "shows that onnxruntime computes what PyTorch does, not that the network predicts "
        "anything: train it before deploying"
    )


def int8_slower_note(latency: Mapping[str, Any] | None) -> str | None:
    """A comment when the int8 file timed slower than the float one on the same profile."""
    if not latency or "fp32" not in latency or "int8" not in latency:
        return None
    fp32, int8 = latency["fp32"].get("value"), latency["int8"].get("value")
    if not isinstance(fp32, (int, float)) or not isinstance(int8, (int, float)) or int8 <= fp32:
        return None
    return (
        f"int8 is slower than fp32 here ({int8:.4g} vs {fp32:.4g} ms): onnxruntime runs the "
        "QDQ file's quantize and dequantize steps around each operator, which costs more than "
        "int8 arithmetic saves on a network this small or on a CPU without fast int8 "
        "instructions (VNNI); the int8 file is still smaller. Time it on the target device"
    )
