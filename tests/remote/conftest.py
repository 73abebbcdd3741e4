"""Fixtures of the remote tests: a factory of device servers and a private cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from remote_helpers import Server, start_server


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    """A factory of servers; all of them are stopped after the test."""
    started: list[Server] = []

    def make(*args: str, name: str = "board-a", token: str | None = None) -> Server:
        server = start_server(*args, name=name, token=token)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(cache))
    monkeypatch.delenv("HWNAS_DEVICE_TOKEN", raising=False)
    return cache
