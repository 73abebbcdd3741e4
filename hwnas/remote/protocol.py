"""The device server's wire protocol, version 1: plain HTTP, JSON and raw ONNX bytes.

Standard library only, so that a board needs nothing but numpy and onnxruntime.

``GET /v1/health``   no token; ``{"protocol", "server", "busy"}``: is the server up.
``GET /v1/info``     token; the board: name, CPU, onnxruntime and numpy versions, providers,
                     limits.
``POST /v1/measure`` token; body = ``MAGIC`` + one JSON header line + the models' bytes one
                     after another (``header["sizes"]`` gives their lengths). Answer: JSON with
                     per-model timing samples (ms) and summaries, and the environment.

Errors are JSON ``{"error": "one line", "code": ...}`` with an HTTP status: 400 bad request
(not ONNX, bad shape), 401 token, 413 too large, 422 over the run-time limit, 503 busy.
Nothing is ever unpickled: the header is JSON and a model is handed to onnxruntime as bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

PROTOCOL = 1
MAGIC = b"HWNAS-DEVICE/1\n"
SERVER_NAME = "hwnas-device"
TOKEN_HEADER = "Authorization"
DEFAULT_PORT = 8470
#: Fields of a measure request and their defaults.
REQUEST_DEFAULTS: Mapping[str, Any] = {
    "providers": ["CPUExecutionProvider"],
    "provider_options": {},
    "threads": 1,
    "batch_size": 1,
    "input_shape": None,
    "warmup": 10,
    "repeats": 30,
    "clock": "wall",
    "seed": 0,
}


class ProtocolError(ValueError):
    """A malformed message; the text is one line for the user."""


def encode_request(models: Sequence[bytes], settings: Mapping[str, Any]) -> bytes:
    """The body of a measure request: ``MAGIC``, the JSON header line, the models."""
    header = {
        "protocol": PROTOCOL,
        **{k: settings.get(k, v) for k, v in REQUEST_DEFAULTS.items()},
        "sizes": [len(m) for m in models],
    }
    line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    return MAGIC + line + b"".join(models)


def decode_request(body: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """The header (defaults filled in, types checked) and the models of a request body."""
    if not body.startswith(MAGIC):
        raise ProtocolError("not an hwnas device request (wrong magic); update the client")
    end = body.find(b"\n", len(MAGIC))
    if end < 0:
        raise ProtocolError("request header is not terminated")
    try:
        header = json.loads(body[len(MAGIC) : end])
    except ValueError:
        raise ProtocolError("request header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("request header must be a JSON object")
    if header.get("protocol") != PROTOCOL:
        raise ProtocolError(
            f"protocol {header.get('protocol')!r} is not supported; this server speaks "
            f"{PROTOCOL}: install the same hwnas version on the board and the host"
        )
    settings = {k: header.get(k, v) for k, v in REQUEST_DEFAULTS.items()}
    _check_settings(settings)
    sizes = header.get("sizes")
    if not isinstance(sizes, list) or not sizes or not all(_nonneg_int(s) for s in sizes):
        raise ProtocolError("request header needs 'sizes', a non-empty list of byte counts")
    payload = body[end + 1 :]
    if sum(sizes) != len(payload):
        raise ProtocolError(f"request carries {len(payload)} model bytes, header says {sum(sizes)}")
    models, start = [], 0
    for size in sizes:
        models.append(payload[start : start + size])
        start += size
    return settings, models


def _nonneg_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_settings(s: Mapping[str, Any]) -> None:
    for key, low in (("threads", 1), ("batch_size", 1), ("warmup", 0), ("repeats", 1)):
        if not _nonneg_int(s[key]) or s[key] < low:
            raise ProtocolError(f"'{key}' must be an integer >= {low}, got {s[key]!r}")
    if s["clock"] not in ("wall", "thread"):
        raise ProtocolError(f"'clock' must be 'wall' or 'thread', got {s['clock']!r}")
    providers = s["providers"]
    if not isinstance(providers, list) or not all(isinstance(p, str) for p in providers):
        raise ProtocolError("'providers' must be a list of onnxruntime provider names")
    if not isinstance(s["provider_options"], dict):
        raise ProtocolError("'provider_options' must be an object")
    shape = s["input_shape"]
    if shape is not None and (
        not isinstance(shape, list) or len(shape) != 3 or not all(_nonneg_int(v) for v in shape)
    ):
        raise ProtocolError(f"'input_shape' must be [C, H, W] or null, got {shape!r}")
    if not _nonneg_int(s["seed"]):
        raise ProtocolError("'seed' must be a non-negative integer")


def error_body(message: str, code: str) -> bytes:
    """An error answer: one line a user can act on, and a machine-readable code."""
    return json.dumps({"error": " ".join(message.split()), "code": code}).encode()
