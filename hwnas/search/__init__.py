"""Search strategies behind ask/tell, looked up by name in :data:`STRATEGIES`."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from hwnas.errors import ConfigError
from hwnas.objectives.base import Constraint, Objective
from hwnas.registry import Registry
from hwnas.search.base import Strategy
from hwnas.spaces.base import SearchSpace

__all__ = [
    "STRATEGIES",
    "Strategy",
    "default_strategy",
    "make_strategy",
    "max_objectives",
    "strategy_parameters",
]

#: The strategy a search uses when none is named, by situation; the measurements behind the
#: choice are in docs/bo.md ("Which strategy by default"): on tables `bo` finds the best front
#: per evaluation; when training, LEMONADE's children inherit their parents' weights, which
#: per trained candidate beats every strategy that trains each candidate from scratch.
DEFAULT_TABLE = "bo"
DEFAULT_TRAINING = "lemonade"

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
STRATEGIES.add("random", "hwnas.search.random:RandomSearch", "uniform random sampling (baseline)")
STRATEGIES.add(
    "lemonade",
    "hwnas.search.lemonade:LemonadeSearch",
    "LEMONADE: Lamarckian evolution, density-guided on cheap objectives",
)
STRATEGIES.add(
    "nsga2", "hwnas.search.nsga2:NSGA2Search", "pymoo's NSGA-II with the space's operators"
)
STRATEGIES.add(
    "rl",
    "hwnas.search.rl.strategy:RLSearch",
    "Neural-Architect-style RL: embedding, controller, performance predictors",
)
STRATEGIES.add(
    "bo",
    "hwnas.search.bo:BOSearch",
    "BANANAS-style Bayesian optimisation: neural ensemble, expected hypervolume improvement",
)
STRATEGIES.add(
    "hillclimb",
    "hwnas.search.hillclimb:HillClimb",
    "NASH hill climbing with network morphisms (single-objective baseline)",
)
STRATEGIES.add(
    "fbnet",
    "hwnas.search.supernet.strategies:FBNetSearch",
    "FBNet: Gumbel-softmax supernet, LUT latency",
)
STRATEGIES.add(
    "squeezenas",
    "hwnas.search.supernet.strategies:SqueezeNASSearch",
    "SqueezeNAS: supernet search against a latency or MACs target",
)
STRATEGIES.add(
    "darts",
    "hwnas.search.supernet.strategies:DARTSSearch",
    "DARTS softmax relaxation on the supernet",
)
STRATEGIES.add(
    "enas",
    "hwnas.search.supernet.enas:ENASSearch",
    "ENAS: LSTM controller over shared weights, preference-conditioned reward (a front)",
)
STRATEGIES.add(
    "snas",
    "hwnas.search.supernet.strategies:SNASSearch",
    "SNAS stochastic relaxation, per-layer cost",
)


def max_objectives(name: str) -> int | None:
    """How many objectives strategy ``name`` optimises (None: any number)."""
    return getattr(STRATEGIES.get(name), "max_objectives", None)


def default_strategy(*, benchmark: object = None, dataset: object = None) -> str:
    """The strategy for a search that names none: a table search (``benchmark``, no
    ``dataset``) or a training search."""
    return DEFAULT_TABLE if benchmark is not None and not dataset else DEFAULT_TRAINING


def strategy_parameters(cls: type) -> list[str]:
    """The keyword parameters of ``cls``: its ``__init__``'s and, where that passes
    ``**kwargs`` on (a strategy that shares a base's options), its bases' in turn."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue  # inherits its base's __init__, read at the next class
        params = inspect.signature(init).parameters.values()
        names += [
            p.name for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name != "self" and p.name not in names
        ]  # fmt: skip
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def make_strategy(
    name: str,
    *,
    space: SearchSpace,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> Strategy:
    """Instantiate strategy ``name``; clear errors for unknown or bad options."""
    cls = STRATEGIES.get(name)
    options = dict(options or {})
    reserved = {"space", "objectives", "constraints", "seed"}
    allowed = [p for p in strategy_parameters(cls) if p not in reserved]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"strategy '{name}' has no option {', '.join(unknown)}; "
            f"its options are: {', '.join(allowed) or 'none'}"
        )
    try:
        strategy = cls(
            space=space, objectives=objectives, constraints=constraints, seed=seed, **options
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad options for strategy '{name}': {exc}") from None
    strategy.check_space()
    return strategy
