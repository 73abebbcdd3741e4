"""The report's sections: summary, front, plots, family tree, cost, events, environment, config."""

from __future__ import annotations

import base64
import os
import platform
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hwnas.rundir as rundir
from hwnas.config import dumps_toml, format_duration
from hwnas.errors import HwnasError
from hwnas.lineage import describe_transfer
from hwnas.objectives.pareto import HV_DEFINITION, HV_NAME
from hwnas.objectives.ranking import ranking_line
from hwnas.plot.data import RunData, format_number
from hwnas.plot.render import render_plots
from hwnas.report.html import (
    _LIBRARIES,
    _MAX_EVENT_ROWS,
    _compact,
    _e,
    _objective_heading,
    _objective_values,
    _table,
    _unit,
    _utc,
    _version,
)
from hwnas.report.sources import environment_tables, without_empty_sections
from hwnas.types import Trial, TrialState


# -- sections -------------------------------------------------------------------------------
def _summary(run: RunData) -> str:
    config, front = run.config, run.front
    counts = front.counts
    objectives = ", ".join(_objective_heading(run, o) for o in run.objectives)
    constraints = ", ".join(
        f"{c} ({_unit(run, c.metric)})" if _unit(run, c.metric) else str(c) for c in run.constraints
    )
    sources = [
        f"benchmark table {Path(config.benchmark).name}" if config.benchmark else "",
        f"training on {config.dataset}" if config.dataset else "",
        f"device profile {config.device}" if config.device else "",
    ]
    budget = [
        f"{config.budget} evaluations" if config.budget is not None else "",
        format_duration(config.time_budget) if config.time_budget else "",
    ]
    pending = sum(not t.state.finished for t in run.trials)
    knee = front.knee
    rows = [
        ("space", _options(config.space, config.space_options)),
        ("strategy", _options(config.strategy, config.strategy_options)),
        ("objectives", objectives),
        ("constraints", constraints or "none"),
        ("evaluated by", "; ".join(s for s in sources if s) or "–"),
        ("budget", " and ".join(b for b in budget if b) or "none"),
        ("seed", str(config.seed)),
        (
            "trials",
            f"{counts['complete']} complete, {counts['failed']} failed, "
            f"{counts['feasible']} feasible" + (f", {pending} unfinished" if pending else ""),
        ),
        ("Pareto front", f"{counts['front']} members"),
        ("knee", f"trial {knee.number}" if knee is not None else "–"),
        (HV_NAME, f"{front.hypervolume:.4f} ({HV_DEFINITION})"),
    ]
    if run.ranking is not None:  # a supernet run: how far to trust its one-shot ranking
        rows.append(("one-shot ranking", ranking_line(run.ranking).split(": ", 1)[1]))
    table = "<table>\n" + "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return table + "\n</table>\n" + _failures(run.trials)


def _options(name: str, options: Mapping[str, Any]) -> str:
    if not options:
        return name
    return f"{name} ({', '.join(f'{k}={v}' for k, v in options.items())})"


def _failures(trials: Sequence[Trial]) -> str:
    errors = Counter(
        (t.error or "no reason recorded").strip().splitlines()[-1][:300]
        for t in trials
        if t.state is TrialState.FAILED
    )
    if not errors:
        return ""
    rows = [(_e(message), f"<span class='num'>{n}</span>") for message, n in errors.most_common(10)]
    more = len(errors) - 10
    note = f"<p class='note'>… and {more} other reasons.</p>" if more > 0 else ""
    return "<h3>Why trials failed</h3>\n" + _table(["reason (last line)", "trials"], rows) + note


def _front_table(run: RunData) -> str:
    front = run.front
    if not front.members:
        return "<p>No completed, feasible trial: the front is empty.</p>"
    objective_metrics = [o.metric for o in run.objectives]
    extra = [c.metric for c in run.constraints if c.metric not in objective_metrics]
    extra = list(dict.fromkeys(extra))
    has_parents = any(t.parent is not None for t in front.members)
    header = ["trial"]
    header += [_objective_heading(run, o) for o in run.objectives]
    header += [f"{m} ({_unit(run, m)})" if _unit(run, m) else m for m in extra]
    header += ["parent"] if has_parents else []
    header.append("genotype")
    knee = front.knee.number if front.knee is not None else None
    rows = []
    for t in front.members:
        cells = [
            f"<td class='num'>{t.number}"
            + (" <span class='badge' title='knee point'>knee</span>" if t.number == knee else "")
            + "</td>"
        ]
        cells += [
            f"<td class='num'>{_e(format_number(t.value(m)))}</td>" for m in objective_metrics
        ]
        cells += [f"<td class='num'>{_e(format_number(t.value(m)))}</td>" for m in extra]
        if has_parents:
            cells.append(f"<td class='num'>{'' if t.parent is None else t.parent}</td>")
        cells.append(f"<td><code>{_e(t.genotype.spec)}</code></td>")
        css = " class='knee'" if t.number == knee else ""
        rows.append(f"<tr id='trial-{t.number}' data-trial='{t.number}'{css}>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return (
        f"<p>{len(front.members)} non-dominated feasible trials, best first by "
        f"{_e(run.objectives[0].metric)}; the knee is the member farthest behind the "
        "hyperplane through the front's extremes. Also in <code>front.csv</code> and "
        "<code>front.json</code>.</p>\n"
        f"<table class='front-table'>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _plots(run: RunData) -> str:
    figures = []
    for plot in render_plots([run]):
        data = base64.b64encode(plot.to_bytes("png")).decode("ascii")
        width, height = (round(v * plot.figure.dpi) for v in plot.figure.get_size_inches())
        figures.append(
            f"<figure id='plot-{_e(plot.name)}'>"
            f"<img src='data:image/png;base64,{data}' width='{width}' height='{height}' "
            f"alt='{_e(plot.caption)}'>"
            f"<figcaption>{_e(plot.caption)} (also <code>plots/{_e(plot.name)}.png</code> "
            f"and <code>.svg</code> after <code>hwnas plot</code>)</figcaption></figure>"
        )
    return "\n".join(figures) or "<p>Nothing to plot.</p>"


def _family_tree(run: RunData) -> str:
    """The ancestors of the front members, as a tree; linear stretches are not indented."""
    by_number = {t.number: t for t in run.trials}
    members = {t.number for t in run.front.members}
    relevant: set[int] = set()
    for number in members:
        while number is not None and number in by_number and number not in relevant:
            relevant.add(number)
            number = by_number[number].parent
    if not any(by_number[n].parent is not None for n in relevant):
        return (
            f"<p>No front member has a recorded parent: strategy "
            f"<code>{_e(run.config.strategy)}</code> does not build on earlier trials. "
            "Strategies that do (LEMONADE's network morphisms, for example) record the parent "
            "of every child, and the front's ancestry then shows here.</p>"
        )
    children: dict[int | None, list[int]] = {}
    for n in sorted(relevant):
        parent = by_number[n].parent
        children.setdefault(parent if parent in relevant else None, []).append(n)
    knee = run.front.knee.number if run.front.knee is not None else None

    def node(n: int) -> str:
        t = by_number[n]
        transfer = describe_transfer(t.candidate.transfer) if t.candidate.transfer else None
        badges = " <span class='badge'>front</span>" if n in members else ""
        badges += " <span class='badge'>knee</span>" if n == knee else ""
        link = f"<a href='#trial-{n}'>trial {n}</a>" if n in members else f"trial {n}"
        how = ""
        if t.parent is not None:
            how = f" from trial {t.parent}" + (f" by {_e(transfer)}" if transfer else "")
        css = " class='front'" if n in members else ""
        return (
            f"<li{css}><span class='node'>{link}</span>{badges}{how}: {_objective_values(run, t)} "
            f"<code>{_e(t.genotype.spec)}</code></li>"
        )

    def branch(n: int) -> str:
        # Follow single-child chains at one level; indent only where the tree branches.
        items = [node(n)]
        while len(children.get(n, [])) == 1:
            n = children[n][0]
            items.append(node(n))
        kids = children.get(n, [])
        if kids:
            items += [f"<li><ul>{branch(k)}</ul></li>" for k in kids]
        return "".join(items)

    roots = children.get(None, [])
    trees = "\n".join(f"<ul class='tree'>{branch(r)}</ul>" for r in roots)
    return (
        "<p>The front members and their ancestors: a trial's child follows it, and where a "
        "trial has several children each starts an indented branch. Values: "
        f"{', '.join(_e(o.metric) for o in run.objectives)}.</p>\n{trees}"
    )


def _cost(run: RunData) -> str:
    timed = [t for t in run.trials if t.started is not None and t.finished is not None]
    if not timed:
        return "<p>No trial has finished yet.</p>"
    start = min(t.started for t in timed)  # type: ignore[type-var]
    end = max(t.finished for t in timed)  # type: ignore[type-var]
    evaluation = sum(t.duration or 0.0 for t in timed)
    rows = [
        ("wall time", f"{format_duration(end - start)} ({_utc(start)} to {_utc(end)})"),
        (
            "busy wall time",
            f"{format_duration(_union_length(timed))} (excludes pauses between sessions)",
        ),
        ("evaluation time", f"{format_duration(evaluation)} summed over {len(timed)} trials"),
    ]
    train = [t.value("train_time") for t in run.trials if "train_time" in t.measurements]
    if train:
        rows.append(("training time", f"{format_duration(sum(train))} (the train_time metric)"))
    summary = "<table>\n" + "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    by_device: dict[str, list[float]] = {}
    for t in timed:
        by_device.setdefault(_devices_of(t), []).append(t.duration or 0.0)
    device_rows = [
        (
            _e(device),
            f"<span class='num'>{len(times)}</span>",
            _e(f"{sum(times) / 3600:.4g} h"),
            _e(format_duration(sum(times) / len(times))),
        )
        for device, times in sorted(by_device.items(), key=lambda kv: -sum(kv[1]))
    ]
    return (
        summary
        + "\n</table>\n<h3>Device hours</h3>\n<p class='note'>Evaluation time of the trials "
        "grouped by the devices that produced their measurements (a trial measured on several "
        "devices counts once, under all of them together).</p>\n"
        + _table(["device(s)", "trials", "device hours", "mean per trial"], device_rows)
    )


def _union_length(trials: Sequence[Trial]) -> float:
    """Seconds covered by at least one trial's evaluation (parallel trials counted once)."""
    spans = sorted((t.started, t.finished) for t in trials)  # type: ignore[type-var]
    total, current_start, current_end = 0.0, *spans[0]
    for s, f in spans[1:]:
        if s > current_end:
            total += current_end - current_start
            current_start, current_end = s, f
        else:
            current_end = max(current_end, f)
    return total + current_end - current_start


def _devices_of(trial: Trial) -> str:
    names = {
        str(m.device or m.env.get("device"))
        for m in trial.measurements.values()
        if m.device or m.env.get("device")
    }
    if names:
        return " + ".join(sorted(names))
    return "not recorded (failed)" if trial.state is TrialState.FAILED else "not recorded"


def _events(events: Sequence[Mapping[str, Any]]) -> str:
    if not events:
        return "<p>The strategy logged no events (predictor quality per round and the like).</p>"
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(str(event.get("kind", "")), []).append(event)
    parts = []
    for kind, items in by_kind.items():
        keys = list(dict.fromkeys(k for item in items for k in item if k not in ("time", "kind")))
        rows = [
            [_e(_utc(item.get("time")))] + [_compact(item[k]) if k in item else "–" for k in keys]
            for item in items[:_MAX_EVENT_ROWS]
        ]
        more = len(items) - _MAX_EVENT_ROWS
        note = f"<p class='note'>… {more} more not shown.</p>" if more > 0 else ""
        parts.append(f"<h3>{_e(kind)} ({len(items)})</h3>\n" + _table(["time", *keys], rows) + note)
    return "\n".join(parts)


def _environment(run: RunData) -> str:
    here = [
        ("hwnas (run)", run.config.hwnas_version or "–"),
        ("python", sys.version.split()[0]),
        ("platform", platform.platform()),
        ("cpus", str(os.cpu_count())),
        *((name, _version(name)) for name in _LIBRARIES),
    ]
    parts = [
        environment_tables(run),
        "<h3>This report was written with</h3>",
        _table(["", "version"], [(_e(k), _e(v)) for k, v in here]),
    ]
    return "\n".join(parts)


def _configuration(run: RunData) -> str:
    # Never through a symlink (it could put an outside file's text into the page); a config.toml
    # that is missing or not text falls back to the settings stored in the database.
    try:
        text = rundir.read_text(run.run_dir, rundir.CONFIG)
    except HwnasError:
        text = None
    if text is None:
        text = dumps_toml(run.config.to_dict())
    text = without_empty_sections(text)  # an empty [training] says nothing
    return (
        "<p>The resolved settings (<code>config.toml</code>), enough to reproduce the run.</p>\n"
        f"<pre>{_e(text)}</pre>"
    )
