"""Search spaces, looked up by name in :data:`SPACES`."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

from hwnas.errors import ConfigError
from hwnas.registry import Registry
from hwnas.spaces.base import CategoricalSpace, LayerInfo, SearchSpace

__all__ = [
    "SPACES",
    "CategoricalSpace",
    "LayerInfo",
    "SearchSpace",
    "make_space",
    "parse_genotype",
    "parse_options",
]

SPACES: Registry[type[SearchSpace]] = Registry("space")
SPACES.add("nb201", "hwnas.spaces.nb201:NB201Space", "NAS-Bench-201 cell space, 15,625 cells")
SPACES.add("macro", "hwnas.spaces.macro:MacroSpace", "NAS-Bench-Macro chain, 6,561 networks")
SPACES.add(
    "mobilenet", "hwnas.spaces.mobilenet:MobileNetSpace", "FBNet-style inverted-residual chain"
)
SPACES.add("chain", "hwnas.spaces.chain:ChainSpace", "growing plain CNN (LEMONADE's setting)")


def make_space(name: str, options: Mapping[str, Any] | None = None) -> SearchSpace:
    """Instantiate space ``name`` with keyword ``options``; clear errors for unknown options."""
    cls = SPACES.get(name)
    options = dict(options or {})
    params = inspect.signature(cls).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        allowed = ", ".join(p for p in params) or "none"
        raise ConfigError(
            f"space '{name}' has no option {', '.join(unknown)}; its options are: {allowed}"
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad options for space '{name}': {exc}") from None


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["width_mult=0.5", "se=true"]`` -> ``{"width_mult": 0.5, "se": True}`` (JSON values)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"cannot read option '{pair}'; write KEY=VALUE, e.g. width_mult=0.5")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options[key.strip()] = value
    return options


def parse_genotype(text: str) -> tuple[str, str]:
    """``"macro:02012100"`` -> ``("macro", "02012100")``; ConfigError without a known space."""
    name, sep, spec = text.partition(":")
    if not sep or name not in SPACES:
        raise ConfigError(
            f"cannot read architecture '{text}'; write SPACE:SPEC with SPACE one of "
            f"{', '.join(SPACES.names())}, e.g. macro:02012100"
        )
    return name, spec
