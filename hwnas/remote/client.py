"""The host's side of one device server: health, board info and measure requests over HTTP.

Failures are sorted by what the pool should do about them: :class:`BoardUnreachable` (the
board is down, the connection broke mid-measurement: try another board), :class:`BoardBusy`
(another host or worker is measuring there: try later or elsewhere) and :class:`BoardRejected`
(the request itself is wrong: a token, a model, a limit; another board would say the same, so
it is a one-line ``DeviceError`` for the user).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from hwnas.errors import DeviceError
from hwnas.remote.protocol import PROTOCOL, SERVER_NAME, encode_request

__all__ = ["BoardBusy", "BoardRejected", "BoardUnreachable", "RemoteBoard", "normalize_url"]


class BoardUnreachable(Exception):
    """The board did not answer (refused, timed out, connection lost)."""


class BoardBusy(Exception):
    """The board is measuring another request."""


class BoardRejected(DeviceError):
    """The board refused the request for a reason the user must fix."""


def normalize_url(url: str) -> str:
    """``host:port`` or ``http://host:port[/]`` as ``http://host:port``; ValueError if not."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
        raise ValueError(f"'{url}' is not a server address; write http://HOST:PORT")
    return f"{parts.scheme}://{parts.netloc}"


class RemoteBoard:
    """One device server at ``url``; ``token`` is sent as a bearer token when given."""

    def __init__(self, url: str, *, token: str | None, timeout: float = 300.0) -> None:
        self.url = normalize_url(url)
        self.token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RemoteBoard({self.url!r})"

    def _call(
        self, method: str, path: str, body: bytes | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                data = answer.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except (
            TimeoutError,
            urllib.error.URLError,
            http.client.HTTPException,
            ConnectionError,
            OSError,
        ) as exc:
            reason = getattr(exc, "reason", exc)
            raise BoardUnreachable(f"{self.url}: {_first_line(reason)}") from None
        try:
            parsed = json.loads(data)
        except ValueError:
            raise BoardUnreachable(
                f"{self.url}: the answer is not JSON (not a device server?)"
            ) from None
        version = parsed.get("protocol") if isinstance(parsed, dict) else None
        if version != PROTOCOL:
            raise BoardRejected(
                f"{self.url} speaks protocol {version}, not {PROTOCOL}: install the same hwnas "
                "version on the board and the host"
            )
        return parsed

    def _http_error(self, exc: urllib.error.HTTPError) -> Exception:
        try:
            data = json.loads(exc.read())
            message, code = str(data.get("error", "")), str(data.get("code", ""))
        except (ValueError, OSError, AttributeError):
            message, code = "", ""
        if exc.code == 503 and code == "busy":
            return BoardBusy(f"{self.url}: busy")
        if not message:
            return BoardUnreachable(f"{self.url}: HTTP {exc.code} (not an hwnas device server?)")
        if exc.code >= 500:
            return BoardUnreachable(f"{self.url}: {message}")
        return BoardRejected(f"board {self.url}: {message}")

    def health(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """``{"protocol", "server", "busy"}``; BoardUnreachable when it does not answer."""
        data = self._call("GET", "/v1/health", timeout=timeout)
        if data.get("server") != SERVER_NAME:
            raise BoardUnreachable(f"{self.url}: not an hwnas device server")
        return data

    def info(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """The board's name, hardware, versions and limits (checks the token)."""
        return self._call("GET", "/v1/info", timeout=timeout)

    def measure(self, models: Sequence[bytes], settings: Mapping[str, Any]) -> dict[str, Any]:
        """``{"results": [{"samples", "stats", "input_shape"}...], "env": {...}}``."""
        return self._call("POST", "/v1/measure", encode_request(models, settings))


def _first_line(reason: Any) -> str:
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0]
