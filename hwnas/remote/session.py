"""The host's pools, one per set of servers in this process, and what profiles ask of them.

Plain arguments only (server URLs, the token's environment variable, the timeout), so that
``hwnas.devices`` can ask about a remote profile without this package importing it back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from hwnas.errors import DeviceError
from hwnas.remote.pool import BoardPool

__all__ = ["board_identity", "pool", "remote_availability"]

_POOLS: dict[tuple[tuple[str, ...], str | None, float], BoardPool] = {}
_LOCK = threading.Lock()
#: What makes two boards "of one kind": latency tables and predictors are cached under it.
IDENTITY_KEYS = ("cpu", "cores", "machine", "board_model", "onnxruntime", "system")


def pool(name: str, servers: Sequence[str], token_env: str, timeout: float) -> BoardPool:
    """This process's pool for ``servers`` (kept, so dead boards stay known as dead)."""
    token = os.environ.get(token_env) or None
    key = (tuple(servers), token, float(timeout))
    with _LOCK:
        found = _POOLS.get(key)
        if found is None:
            found = _POOLS[key] = BoardPool(urls=servers, token=token, name=name, timeout=timeout)
        return found


def board_identity(
    name: str, servers: Sequence[str], token_env: str, timeout: float
) -> dict[str, Any]:
    """The hardware and onnxruntime version of the pool's boards (the first that answers)."""
    infos = pool(name, servers, token_env, timeout).infos()
    first = infos[sorted(infos)[0]]
    return {k: first.get(k) for k in IDENTITY_KEYS}


def remote_availability(
    name: str,
    servers: Sequence[str],
    token_env: str,
    timeout: float,
    providers: Sequence[str],
) -> tuple[bool, str, tuple[str, ...]]:
    """(usable, why not, notes): at least one board answers, accepts the token and has the
    providers; notes name unreachable boards and boards of another kind."""
    the_pool = pool(name, servers, token_env, timeout)
    try:
        infos = the_pool.probe()
    except DeviceError as exc:
        return False, str(exc), ()
    notes = []
    down = [u for u in servers if u not in infos]
    if down:
        notes.append(f"not reachable now: {', '.join(down)}")
    for url, info in infos.items():
        missing = [p for p in providers if p not in info.get("available_providers", [])]
        if missing:
            return (
                False,
                f"board {url} ({info.get('board')}) has no {', '.join(missing)}; it has "
                f"{', '.join(info.get('available_providers', []))}",
                (),
            )
    kinds = {tuple(str(info.get(k)) for k in IDENTITY_KEYS[:4]) for info in infos.values()}
    if len(kinds) > 1:
        notes.append("boards of different kinds in one pool: their latencies will differ")
    boards = ", ".join(f"{info.get('board')} ({info.get('cpu')})" for info in infos.values())
    notes.append(f"boards: {boards}")
    return True, "", tuple(notes)
