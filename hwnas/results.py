"""A run's Pareto front: computed from trials, written as ``front.csv`` and ``front.json``."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.config import RunConfig
from hwnas.errors import ConfigError
from hwnas.evaluate.evaluator import available_units, resolve_objectives
from hwnas.evaluate.providers import build_providers
from hwnas.files import atomic_write
from hwnas.objectives.base import Constraint, Objective, parse_constraint, parse_objective
from hwnas.objectives.pareto import (
    front_indices,
    is_feasible,
    knee_index,
    normalised_hypervolume,
    objective_matrix,
)
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.types import Trial, TrialState

if TYPE_CHECKING:
    from hwnas.runner import RunOutcome

HV_REFERENCE = 1.1


@dataclass(frozen=True)
class Front:
    """Non-dominated feasible trials, sorted by the first objective (best first).

    ``hypervolume`` is normalised: each objective is scaled so that the best and worst values
    among all feasible evaluated trials map to 0 and 1, with the reference point at 1.1.
    """

    objectives: list[Objective]
    constraints: list[Constraint]
    units: dict[str, str]
    members: list[Trial]
    knee: Trial | None
    hypervolume: float
    ideal: list[float]
    nadir: list[float]
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "objectives": [
                {
                    "metric": o.metric,
                    "direction": o.direction.value,
                    "unit": self.units.get(o.metric, ""),
                }
                for o in self.objectives
            ],
            "constraints": [str(c) for c in self.constraints],
            "hypervolume": {
                "value": self.hypervolume,
                "normalisation": "objectives scaled by the ideal and nadir of all feasible trials",
                "ideal": self.ideal,
                "nadir": self.nadir,
                "reference": HV_REFERENCE,
            },
            "knee": self.knee.number if self.knee is not None else None,
            "counts": self.counts,
            "members": [
                {
                    "trial": t.number,
                    "genotype": t.genotype.to_json(),
                    "values": {o.metric: t.value(o.metric) for o in self.objectives},
                    "measurements": {k: m.to_json() for k, m in t.measurements.items()},
                    "parent": t.parent,
                }
                for t in self.members
            ],
        }


def compute_front(
    trials: Sequence[Trial],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    units: Mapping[str, str] | None = None,
) -> Front:
    """The Pareto front of ``trials``.

    A genotype trained at several fidelities (successive halving) counts once, with its
    highest-fidelity complete trial. ``counts`` cover every trial, except ``feasible`` and
    ``front``, which count the trials considered.
    """
    objectives, constraints = list(objectives), list(constraints)
    considered = highest_fidelity(trials)
    indices = front_indices(considered, objectives, constraints)
    members = sorted(
        (considered[i] for i in indices),
        key=lambda t: (objectives[0].sign * t.value(objectives[0].metric), t.number),
    )
    feasible = [t for t in considered if is_feasible(t, constraints)]
    F_all = objective_matrix(feasible, objectives)
    F_all = F_all[np.isfinite(F_all).all(axis=1)]
    knee = None
    hv = 0.0
    ideal: list[float] = []
    nadir: list[float] = []
    if len(F_all):
        lo, hi = F_all.min(axis=0), F_all.max(axis=0)
        ideal = [o.sign * v for o, v in zip(objectives, lo)]
        nadir = [o.sign * v for o, v in zip(objectives, hi)]
        F_front = objective_matrix(members, objectives)
        hv = normalised_hypervolume(F_front, lo, hi, HV_REFERENCE)
        knee = members[knee_index(F_front)]
    counts = {
        "trials": len(trials),
        "complete": sum(t.state is TrialState.COMPLETE for t in trials),
        "failed": sum(t.state is TrialState.FAILED for t in trials),
        "feasible": len(feasible),
        "front": len(members),
    }
    return Front(
        objectives, constraints, dict(units or {}), members, knee, hv, ideal, nadir, counts
    )


def highest_fidelity(trials: Sequence[Trial]) -> list[Trial]:
    """The trials with, per genotype, only its complete trial of the highest fidelity.

    Lower-fidelity results of a genotype trained further are stale, not separate networks.
    A fidelity of None ranks below any number; runs without fidelities are returned as they are.
    """
    if all(t.candidate.fidelity is None for t in trials):
        return list(trials)
    best: dict[str, Trial] = {}
    for t in trials:
        if t.state is not TrialState.COMPLETE:
            continue
        key = t.genotype.key()
        current = best.get(key)
        if current is None or _fidelity(t) > _fidelity(current):
            best[key] = t
    keep = {t.number for t in best.values()}
    return [t for t in trials if t.state is not TrialState.COMPLETE or t.number in keep]


def _fidelity(trial: Trial) -> float:
    f = trial.candidate.fidelity
    return -float("inf") if f is None else float(f)


def write_front(run_dir: Path, front: Front) -> tuple[Path, Path]:
    """Write ``front.csv`` (trial, genotype, one column per objective) and ``front.json``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "genotype", *(o.metric for o in front.objectives)])
    for t in front.members:
        writer.writerow(
            [t.number, t.genotype.spec, *(repr(t.value(o.metric)) for o in front.objectives)]
        )
    csv_path = atomic_write(run_dir / "front.csv", buffer.getvalue())
    json_path = atomic_write(run_dir / "front.json", json.dumps(front.to_json(), indent=2) + "\n")
    return csv_path, json_path


# -- reading a run ---------------------------------------------------------------------------


@dataclass
class SearchResult:
    """A run's trials and Pareto front (``front.hypervolume`` is normalised, see Front)."""

    run_dir: Path
    config: RunConfig
    trials: list[Trial]
    front: Front
    outcome: RunOutcome | None = None

    @property
    def hypervolume(self) -> float:
        return self.front.hypervolume

    @property
    def objectives(self) -> list[Objective]:
        return self.front.objectives


def open_run(run_dir: str | os.PathLike[str], *, write: bool = False) -> SearchResult:
    """Read a run's trials and front (no evaluation); ``write`` rewrites the front files."""
    with RunStore.open(run_dir, read_only=not write) as store:
        config = RunConfig.from_dict(store.config())
        trials = store.trials()
    objectives, constraints, units = run_objectives(config)
    front = compute_front(trials, objectives, constraints, units)
    if write:
        write_front(Path(run_dir), front)
    return SearchResult(Path(run_dir), config, trials, front)


def run_objectives(config: RunConfig) -> tuple[list[Objective], list[Constraint], dict[str, str]]:
    """The run's resolved objectives, constraints and metric units, without loading evaluators."""
    from hwnas.objectives.base import infer_unit

    objectives = [parse_objective(o) for o in config.objectives]
    constraints = [parse_constraint(c) for c in config.constraints]
    units = {
        m: infer_unit(m) for m in [o.metric for o in objectives] + [c.metric for c in constraints]
    }
    try:
        space = make_space(config.space, config.space_options)
        providers = build_providers(config, space)
        units = available_units(providers)
    except Exception:  # noqa: BLE001 - the table or dataset may be gone; units are a nicety
        pass
    try:
        return (*resolve_objectives(objectives, constraints, units), units)
    except ConfigError:
        return objectives, constraints, units
