"""A run's resolved settings: enough to reproduce it, saved as ``config.toml`` and in the store."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hwnas.errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides its store. Plain JSON-able values only."""

    space: str
    strategy: str
    objectives: list[str]
    constraints: list[str] = field(default_factory=list)
    seed: int = 0
    budget: int | None = None  # evaluations
    time_budget: float | None = None  # seconds
    space_options: dict[str, Any] = field(default_factory=dict)
    strategy_options: dict[str, Any] = field(default_factory=dict)
    benchmark: str | None = None  # absolute path of a table
    dataset: str | None = None
    data_dir: str | None = None
    device: str | None = None  # target device profile (name or path)
    training: dict[str, Any] = field(default_factory=dict)
    profiling: dict[str, Any] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)
    post: dict[str, Any] = field(default_factory=dict)  # export / plot at the end
    hwnas_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|min|s)?")


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"10m"``, ``"1h30m"``; ConfigError otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION.finditer(cleaned):
        if match.start() != pos:
            break
        value, unit = float(match.group(1)), match.group(2) or "s"
        total += value * {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0}[unit]
        pos = match.end()
    if not cleaned or pos != len(cleaned) or total <= 0:
        raise ConfigError(
            f"cannot read duration '{text}'; write e.g. 90s, 10m or 1h30m (more than zero)"
        )
    return total


def format_duration(seconds: float) -> str:
    """``0.25`` -> ``250 ms``, ``75`` -> ``1 min 15 s``, ``4000`` -> ``1 h 06 min``."""
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {secs:02.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes):02d} min"


def _toml_ready(value: Any) -> Any:
    """``value`` without None entries and empty tables (TOML has no null; an empty section says
    nothing), tuples as lists."""
    if isinstance(value, Mapping):
        out = {str(k): _toml_ready(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if not (isinstance(v, dict) and not v)}
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v) for v in value if v is not None]
    return value


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML text of ``data`` (tomli-w): None and empty tables are omitted."""
    import tomli_w

    return tomli_w.dumps(_toml_ready(data))


def loads_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)
