"""The front as the console shows it: values with their spread, ties within noise, warnings."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hwnas.console import print_line, print_table
from hwnas.objectives.noise import interval
from hwnas.objectives.pareto import HV_NAME
from hwnas.objectives.ranking import ranking_line

#: Share of noisy measurements, or of tied front members, above which a run gets a warning.
NOISY_SHARE = 0.25


def print_front(console: Console, result: Any) -> None:
    """Header, the front table (measured values with p10-p90), noise warning, file paths."""
    front = result.front
    counts = front.counts
    header = f"run {result.run_dir}: {counts['complete']} complete, {counts['failed']} failed"
    print_line(console, header)
    if result.outcome is not None:
        print_line(console, session_line(result))
    size, hv = len(front.members), front.hypervolume
    print_line(console, f"Pareto front: {size} members, {HV_NAME} {hv:.4f}")
    spread = set(front.interval_metrics())
    ties = front.noise.ties
    table = Table()
    table.add_column("trial", justify="right", no_wrap=True)
    for o in front.objectives:
        unit = front.units.get(o.metric, "")
        label = f"{o.metric} ({o.direction.value}{', ' + unit if unit else ''})"
        if o.metric in spread:
            label += " [p10, p90]"
        table.add_column(escape(label), justify="right", no_wrap=True)
    if any(ties.values()):
        table.add_column("within noise of", no_wrap=True)
    for t in front.members:
        mark = "*" if front.knee is not None and t.number == front.knee.number else ""
        cells = [f"{t.number}{mark}"]
        for o in front.objectives:
            text = f"{t.value(o.metric):.6g}"
            span = interval(t, o.metric) if o.metric in spread else None
            if span is not None:
                text += f" [{span[0]:.4g}, {span[1]:.4g}]"
            cells.append(text)
        if any(ties.values()):
            cells.append(", ".join(str(n) for n in ties.get(t.number, [])) or "–")
        table.add_row(*(escape(c) for c in cells))
    print_table(console, table, "genotype", [t.genotype.spec for t in front.members])
    for line in noise_advice(front):
        print_line(console, line)
    ranking = getattr(result, "ranking", None)
    if ranking is not None:  # a supernet run: how far its one-shot ranking agreed with training
        print_line(console, ranking_line(ranking))
    print_line(
        console,
        f"* knee point. Files: {result.run_dir / 'front.csv'}, {result.run_dir / 'front.json'}",
    )


def session_line(result: Any) -> str:
    """How many trials this session added and what ended it."""
    outcome, config = result.outcome, result.config
    if outcome.stopped_by == "time":
        why = f"the time budget (--time {config.time_budget or 0:g} s) ran out"
    elif outcome.stopped_by == "exhausted":
        why = "the strategy ran out of new architectures"
    else:
        why = f"the budget of {config.budget} evaluations is spent"
    if outcome.stopped_by == "time" and config.budget:
        why += f" before the budget of {config.budget} evaluations"
    return f"this session added {outcome.evaluated} trials; stopped because {why}"


def noise_advice(front: Any) -> list[str]:
    """Warning lines when the run's measurements are too noisy to rank its front."""
    noise, members = front.noise, front.members
    if not members:
        return []
    tied = noise.tied_members
    measured = {t.number for t in members if any(interval(t, m) for m in front.interval_metrics())}
    noisy_share = len(noise.noisy) / max(1, front.counts.get("complete", 0))
    lines: list[str] = []
    if noise.near_front:
        shown = ", ".join(str(n) for n in noise.near_front[:10])
        more = " ..." if len(noise.near_front) > 10 else ""
        which = f"trials {shown}{more} are" if len(noise.near_front) > 1 else f"trial {shown} is"
        lines.append(
            f"note: {which} off the front only by margins inside the measurement noise "
            "(p10-p90): the front cannot claim to beat them"
        )
    if (measured and len(tied) / len(measured) > NOISY_SHARE) or noisy_share > NOISY_SHARE:
        facts = []
        if noise.noisy:
            facts.append(f"{len(noise.noisy)} trials have a spread too wide to trust")
        if tied:
            facts.append(f"{len(tied)} of {len(members)} front members are within noise of another")
        lines.append(
            f"warning: measurements too noisy to rank: {' and '.join(facts)}. "
            "Measure on a quiet machine (nothing else running), raise the device "
            "profile's repeats, or rank by a latency table (`hwnas devices lut`, then "
            "--latency lut), whose error `hwnas devices calibrate` measures"
        )
    return lines
