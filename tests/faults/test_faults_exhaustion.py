"""A strategy that runs out of new architectures stops the run cleanly, with the front
written, for every strategy; a resume of such a run stops again instead of crashing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_helpers import cli

from hwnas.api import Session, resume
from hwnas.config import RunConfig
from hwnas.runner import Budget
from hwnas.store import RunStore

#: A chain space of a handful of networks: 1x1 or 3x3 convs of 8 channels, at most 2 layers.
TINY = {"kernels": [1, 3], "widths": [8], "max_layers": 2, "max_pools": 0}


def _search(out: Path, strategy: str) -> object:
    objectives = ["params:min"] if strategy == "hillclimb" else ["params:min", "macs:max"]
    config = RunConfig(
        space="chain", strategy=strategy, objectives=objectives, budget=200, space_options=TINY
    )
    session = Session.prepare(config)  # evaluated by the cheap profilers: no table, no data
    with RunStore.create(out, config.to_dict()) as store:
        return session.run(store, Budget(evaluations=200), executor=None, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "nsga2", "lemonade", "hillclimb"])
def test_every_strategy_stops_cleanly_when_the_space_is_exhausted(tmp_path, strategy):
    result = _search(tmp_path / "run", strategy)
    assert result.outcome.stopped_by == "exhausted"
    assert 0 < len(result.trials) < 200
    assert (tmp_path / "run" / "front.csv").is_file() and result.front.members
    again = resume(tmp_path / "run", budget=200)
    assert again.outcome.stopped_by == "exhausted" and len(again.trials) == len(result.trials)


def test_the_cli_says_the_strategy_ran_out(tmp_path):
    out = tmp_path / "run"
    _search(out, "random")
    result = cli("resume", out, "--budget", 200)
    assert result.code == 0 and "ran out of new architectures" in result.out
