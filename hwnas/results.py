"""Reading a run, and its Pareto front: computed from trials, written as ``front.csv`` and
``front.json``.

:func:`read_run` is the one way to read a run: read-only, and with units taken from the stored
measurements, so it never builds evaluators, never loads a dataset or touches the network, and
works on a run whose table or dataset is gone.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import hwnas.rundir as rundir
from hwnas.config import RunConfig
from hwnas.errors import ConfigError, RunError
from hwnas.objectives.base import (
    Constraint,
    Objective,
    canonical_metric,
    infer_unit,
    parse_constraint,
    parse_objective,
)
from hwnas.objectives.noise import NoiseReport, interval, noise_report
from hwnas.objectives.pareto import (
    HV_DEFINITION,
    HV_NAME,
    HV_REFERENCE,
    front_indices,
    is_feasible,
    knee_index,
    normalised_hypervolume,
    objective_matrix,
)
from hwnas.objectives.ranking import RANKING_EVENT
from hwnas.objectives.resolve import resolve_objectives
from hwnas.store import RunStore
from hwnas.types import Trial, TrialState

if TYPE_CHECKING:
    from hwnas.runner import RunOutcome


@dataclass(frozen=True)
class Front:
    """Non-dominated feasible trials, sorted by the first objective (best first).

    ``hypervolume`` is :func:`hwnas.objectives.pareto.normalised_hypervolume` over the bounds
    of all feasible evaluated trials (``HV_DEFINITION``), in [0, 1].
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
    noise: NoiseReport = field(default_factory=lambda: NoiseReport({}, [], []))

    def interval_metrics(self) -> list[str]:
        """Objectives with a measured spread (p10/p90) on some member, e.g. latency."""
        return [
            o.metric
            for o in self.objectives
            if any(interval(t, o.metric) is not None for t in self.members)
        ]

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
                "name": HV_NAME,
                "value": self.hypervolume,
                "definition": HV_DEFINITION,
                "normalisation": "objectives scaled by the ideal and nadir of all feasible trials",
                "ideal": self.ideal,
                "nadir": self.nadir,
                "reference": HV_REFERENCE,
            },
            "knee": self.knee.number if self.knee is not None else None,
            "counts": self.counts,
            "noise": {
                "interval": "p10 and p90 of the repeated measurements",
                "within_noise_of": {str(k): v for k, v in self.noise.ties.items() if v},
                "near_front": self.noise.near_front,
                "noisy_trials": self.noise.noisy,
            },
            "members": [
                {
                    "trial": t.number,
                    "genotype": t.genotype.to_json(),
                    "values": {o.metric: t.value(o.metric) for o in self.objectives},
                    "intervals": {
                        m: {"p10": span[0], "p90": span[1]}
                        for m in self.interval_metrics()
                        if (span := interval(t, m)) is not None
                    },
                    "within_noise_of": self.noise.ties.get(t.number, []),
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
    member_numbers = {t.number for t in members}
    off_front = [t for t in feasible if t.number not in member_numbers]
    noise = noise_report(members, off_front, objectives)
    return Front(
        objectives, constraints, dict(units or {}), members, knee, hv, ideal, nadir, counts, noise
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
    """Write ``front.csv`` (trial, genotype, one column per objective, then ``METRIC_p10`` and
    ``METRIC_p90`` for measured objectives) and ``front.json``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    spread = front.interval_metrics()
    spread_columns = [f"{m}_{q}" for m in spread for q in ("p10", "p90")]
    writer.writerow(["trial", "genotype", *(o.metric for o in front.objectives), *spread_columns])
    for t in front.members:
        spans = [interval(t, m) for m in spread]
        writer.writerow(
            [
                t.number,
                t.genotype.spec,
                *(repr(t.value(o.metric)) for o in front.objectives),
                *(repr(v) if s else "" for s in spans for v in (s or (None, None))),
            ]
        )
    text = json.dumps(front.to_json(), indent=2) + "\n"
    csv_path = rundir.write_file(run_dir, rundir.FRONT_CSV, buffer.getvalue())
    json_path = rundir.write_file(run_dir, rundir.FRONT_JSON, text)
    return csv_path, json_path


@dataclass(frozen=True)
class RunResults:
    """A run as read from its directory: settings, every trial, the front and strategy events."""

    run_dir: Path
    config: RunConfig
    trials: list[Trial]
    front: Front
    events: list[dict[str, Any]]

    @property
    def objectives(self) -> list[Objective]:
        return self.front.objectives

    @property
    def constraints(self) -> list[Constraint]:
        return self.front.constraints

    @property
    def ranking(self) -> dict[str, Any] | None:
        """The supernet's in-run one-shot ranking (see :func:`oneshot_ranking`)."""
        return oneshot_ranking(self.events)


def oneshot_ranking(events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A supernet run's one-shot ranking: the last ``supernet_ranking`` event (Kendall tau,
    its standard error, top-k overlap, n, basis; updated as results came in), without the
    event's time and kind; None for a run without one."""
    found = [e for e in events if e.get("kind") == RANKING_EVENT]
    if not found:
        return None
    return {k: v for k, v in found[-1].items() if k not in ("time", "kind")}


def read_run(run_dir: str | Path) -> RunResults:
    """Read a run read-only (refusing what is not an intact hwnas run) and compute its front."""
    path = Path(run_dir)
    with RunStore.open(path, read_only=True) as store:
        config = stored_config(store)
        trials = store.trials()
        events = store.events()
    objectives, constraints, units = stored_objectives(config, trials)
    front = compute_front(trials, objectives, constraints, units)
    return RunResults(path, config, trials, front, events)


def stored_config(store: RunStore) -> RunConfig:
    """The run's settings as stored in its database; RunError when they are unreadable."""
    try:
        return RunConfig.from_dict(store.config())
    except (ConfigError, TypeError, ValueError) as exc:
        raise RunError(
            f"the settings stored in '{store.run_dir / rundir.DB}' are unreadable ({exc}); "
            "the run database is damaged"
        ) from None


def stored_objectives(
    config: RunConfig, trials: Sequence[Trial]
) -> tuple[list[Objective], list[Constraint], dict[str, str]]:
    """The run's objectives and constraints resolved against the units of its measurements
    (a metric nothing measured, e.g. when every trial failed, keeps its inferred unit)."""
    try:
        objectives = [parse_objective(o) for o in config.objectives]
        constraints = [parse_constraint(c) for c in config.constraints]
    except ConfigError as exc:
        raise RunError(f"the run's stored objectives are unreadable ({exc})") from None
    units = measured_units(trials)
    for metric in [o.metric for o in objectives] + [c.metric for c in constraints]:
        if metric not in units and canonical_metric(metric) not in units:
            units[metric] = infer_unit(metric)
    # A metric nothing measured stays unresolved: show what there is.
    with contextlib.suppress(ConfigError):
        objectives, constraints = resolve_objectives(objectives, constraints, units)
    return objectives, constraints, units


def measured_units(trials: Sequence[Trial]) -> dict[str, str]:
    """Metric -> unit, as recorded with the measurements themselves."""
    units: dict[str, str] = {}
    for trial in trials:
        for m in trial.measurements.values():
            units.setdefault(m.metric, m.unit)
    return units


@dataclass
class SearchResult:
    """A run's trials and Pareto front (``front.hypervolume`` is normalised, see Front)."""

    run_dir: Path
    config: RunConfig
    trials: list[Trial]
    front: Front
    outcome: RunOutcome | None = None
    #: A supernet run's one-shot ranking (:func:`oneshot_ranking`); None for other runs.
    ranking: dict[str, Any] | None = None

    @property
    def hypervolume(self) -> float:
        return self.front.hypervolume

    @property
    def objectives(self) -> list[Objective]:
        return self.front.objectives


def open_run(run_dir: str | os.PathLike[str], *, write: bool = False) -> SearchResult:
    """Read a run's trials and front (no evaluation, read-only: see :func:`read_run`);
    ``write`` rewrites the front files."""
    run = read_run(Path(run_dir))
    if write:
        write_front(run.run_dir, run.front)
    return SearchResult(run.run_dir, run.config, run.trials, run.front, ranking=run.ranking)
