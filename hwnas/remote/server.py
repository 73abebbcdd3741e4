"""The device server: runs on the board, measures ONNX models sent by the search host.

``python -m hwnas.remote --port 8470`` (or ``hwnas device serve``). Standard library, numpy and
onnxruntime only (a test imports this module and checks that torch stays out).

One model batch at a time: a second request while one is measured is answered 503 at once,
so the client sends it to another board of the pool (no interference, no queue on the board).
A token is required unless the server listens on loopback only; it is compared in constant
time. Request size and run time are limited. The server writes no files at all: models are
loaded from memory.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import os
import platform
import secrets
import socket
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hwnas.remote.measure import MeasureError, TooSlow, board_env, measure_models
from hwnas.remote.protocol import (
    PROTOCOL,
    SERVER_NAME,
    ProtocolError,
    decode_request,
    error_body,
)

__all__ = ["DeviceServer", "ServerSettings", "main", "make_server"]

TOKEN_ENV = "HWNAS_DEVICE_TOKEN"


class ServerSettings:
    """What the server accepts: token (None: loopback only), limits, board name."""

    def __init__(
        self,
        *,
        token: str | None,
        name: str,
        max_model_bytes: int = 256 * 2**20,
        max_models: int = 64,
        max_seconds: float = 300.0,
        simulate_ms: float = 0.0,
    ) -> None:
        self.token = token
        self.name = name
        self.max_model_bytes = max_model_bytes
        self.max_models = max_models
        self.max_seconds = max_seconds
        self.simulate_ms = simulate_ms

    @property
    def max_body(self) -> int:
        return self.max_models * self.max_model_bytes + 64 * 1024

    def limits(self) -> dict[str, Any]:
        return {
            "max_model_bytes": self.max_model_bytes,
            "max_models": self.max_models,
            "max_seconds": self.max_seconds,
        }


class DeviceServer(ThreadingHTTPServer):
    """A threading HTTP server with one measurement lock."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], settings: ServerSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.measured = 0
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: DeviceServer
    server_version = f"{SERVER_NAME}/{PROTOCOL}"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # -- answers ----------------------------------------------------------------------------
    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode())

    def _error(self, status: int, message: str, code: str) -> None:
        self._send(status, error_body(message, code))

    def _authorized(self) -> bool:
        token = self.server.settings.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        expected = f"Bearer {token}"
        if hmac.compare_digest(given.encode(), expected.encode()):
            return True
        self._error(
            401,
            "the server rejected the token: set HWNAS_DEVICE_TOKEN on the host to the token "
            "the server was started with",
            "token",
        )
        return False

    # -- endpoints --------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/v1/health":
            self._json(
                200,
                {"protocol": PROTOCOL, "server": SERVER_NAME, "busy": self.server.lock.locked()},
            )
        elif self.path == "/v1/info":
            if self._authorized():
                s = self.server.settings
                info = {"protocol": PROTOCOL, "server": SERVER_NAME, **board_env(s.name)}
                self._json(200, {**info, "limits": s.limits(), "measured": self.server.measured})
        else:
            self._error(404, f"no endpoint {self.path}; see /v1/health", "not_found")

    def do_POST(self) -> None:
        if self.path != "/v1/measure":
            self._error(404, f"no endpoint {self.path}; POST /v1/measure", "not_found")
            return
        s = self.server.settings
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(411, "a measure request needs a Content-Length", "length")
            return
        if not self._authorized():
            self.close_connection = True
            return
        if length > s.max_body:
            self.close_connection = True
            self._error(
                413,
                f"request of {length} bytes is larger than this server accepts ({s.max_body}); "
                "start it with a larger --max-model-mb",
                "too_large",
            )
            return
        body = self.rfile.read(length)
        try:
            settings, models = decode_request(body)
        except ProtocolError as exc:
            self._error(400, str(exc), "protocol")
            return
        too_big = [i for i, m in enumerate(models) if len(m) > s.max_model_bytes]
        if too_big or len(models) > s.max_models:
            what = (
                f"model {too_big[0]} has {len(models[too_big[0]])} bytes, more than this "
                f"server's limit of {s.max_model_bytes}; start it with a larger --max-model-mb"
                if too_big
                else f"{len(models)} models in one request, more than the limit {s.max_models}"
            )
            self._error(413, what, "too_large")
            return
        if not self.server.lock.acquire(blocking=False):
            self._error(503, "the board is measuring another request", "busy")
            return
        try:
            results = measure_models(
                models, settings, max_seconds=s.max_seconds, simulate_ms=s.simulate_ms
            )
            self.server.measured += len(models)
        except TooSlow as exc:
            self._error(422, str(exc), "too_slow")
            return
        except MeasureError as exc:
            self._error(400, str(exc), "model")
            return
        finally:
            self.server.lock.release()
        env = {
            **board_env(s.name),
            "threads": settings["threads"],
            "batch_size": settings["batch_size"],
            "providers": settings["providers"],
            "timer": "thread_time" if settings["clock"] == "thread" else "perf_counter",
            "warmup": settings["warmup"],
        }
        env.pop("available_providers", None)
        self._json(200, {"protocol": PROTOCOL, "results": results, "env": env})


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name or an address) resolves to loopback addresses only."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def make_server(host: str, port: int, settings: ServerSettings) -> DeviceServer:
    """A bound server; ValueError when a token is missing off loopback."""
    if settings.token is None and not is_loopback(host):
        raise ValueError(
            f"listening on {host} needs a token: pass --token or set {TOKEN_ENV} "
            "(without one the server listens on 127.0.0.1 only)"
        )
    return DeviceServer((host, port), settings)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hwnas.remote",
        description="Measure ONNX models on this board for an hwnas search on another machine.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    p.add_argument("--port", type=int, default=8470, help="TCP port (0: any free one)")
    p.add_argument("--token", default=None, help=f"shared secret (default: ${TOKEN_ENV})")
    p.add_argument(
        "--generate-token", action="store_true", help="make up a token and print it at start"
    )
    p.add_argument("--name", default=platform.node() or "board", help="this board's name")
    p.add_argument("--max-model-mb", type=float, default=256.0, help="largest model accepted")
    p.add_argument("--max-models", type=int, default=64, help="most models per request")
    p.add_argument("--max-seconds", type=float, default=300.0, help="longest request (s)")
    p.add_argument("--simulate-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; 2 (with one line on stderr) when it cannot start."""
    args = _parser().parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.generate_token and token is None:
        token = secrets.token_urlsafe(24)
    settings = ServerSettings(
        token=token,
        name=args.name,
        max_model_bytes=int(args.max_model_mb * 2**20),
        max_models=args.max_models,
        max_seconds=args.max_seconds,
        simulate_ms=args.simulate_ms,
    )
    try:
        server = make_server(args.host, args.port, settings)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    port = server.server_address[1]
    auth = "token required" if token else "no token (loopback only)"
    print(f"{SERVER_NAME} protocol {PROTOCOL}: board '{args.name}' on {args.host}:{port}, {auth}")
    if args.generate_token and token:
        print(f"token: {token}  (on the host: export {TOKEN_ENV}={token})")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
