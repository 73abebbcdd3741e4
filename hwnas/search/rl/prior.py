"""Pre-training rows for the rl predictors: an earlier run's complete trials (through the one
run reader, read-only) or random rows of a benchmark table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwnas.errors import ConfigError
from hwnas.spaces.base import SearchSpace
from hwnas.types import Genotype, TrialState


def load_prior(
    path: str, *, space: SearchSpace, metrics: Sequence[str], limit: int, seed: int
) -> tuple[list[Genotype], np.ndarray]:
    """Pre-training rows from a run directory (its complete trials) or a benchmark table
    (``limit`` random rows, seeded); metrics it lacks are missing values, not zeros."""
    source = Path(path)
    genotypes: list[Genotype] = []
    values: list[list[float]] = []
    if source.is_dir():
        from hwnas.results import read_run

        trials = [t for t in read_run(source).trials if t.state is TrialState.COMPLETE]
        for trial in trials[-limit:]:
            if trial.genotype.space == space.name:
                genotypes.append(trial.genotype)
                values.append([trial.value(m) for m in metrics])
    elif source.is_file():
        from hwnas.evaluate.table import TabularBenchmark

        table = TabularBenchmark(path=source, space=space)
        rows = table.genotypes()
        pick = np.random.default_rng(seed).permutation(len(rows))[:limit]
        for i in sorted(pick.tolist()):
            present = [m for m in metrics if m in table.columns]
            measured = table.query(rows[i], present)
            genotypes.append(rows[i])
            values.append([measured[m].value if m in measured else math.nan for m in metrics])
    else:
        raise ConfigError(
            f"pretrain source '{path}' is neither a run directory nor a benchmark table"
        )
    y = np.array(values, dtype=float).reshape(len(values), len(metrics))
    if not np.isfinite(y).any():
        raise ConfigError(
            f"pretrain source '{path}' has none of the metrics {', '.join(metrics)}; "
            "pre-train from a run or table that measured them"
        )
    return genotypes, y
