"""``report.html``: one self-contained page about a run.

Sections: summary, Pareto front, plots (PNG embedded as data URIs), family tree of the front,
exports (``exports/*.json``), search cost, strategy events, environment and configuration.
Every text that comes from the run is escaped. The page has no JavaScript and a
Content-Security-Policy that forbids loading anything, so it shows the same offline, moved or
mailed, and a browser reports an error if anything ever tries to load.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import os
import platform
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hwnas.rundir as rundir
from hwnas.config import dumps_toml
from hwnas.errors import HwnasError
from hwnas.lineage import describe_transfer
from hwnas.objectives.base import Objective
from hwnas.objectives.pareto import HV_DEFINITION, HV_NAME
from hwnas.plot.data import RunData, format_number, format_value, load_run
from hwnas.plot.render import render_plots
from hwnas.report_sections import (
    budget_section,
    environment_tables,
    percent,
    without_empty_sections,
)
from hwnas.types import Trial, TrialState

REPORT_NAME = rundir.REPORT
_LIBRARIES = ("hwnas", "numpy", "matplotlib", "moocore", "torch", "onnx", "onnxruntime")
_MAX_EVENT_ROWS = 200

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.knee td { background: #fff6d5; }
code, pre { font: 12px/1.4 ui-monospace, monospace; } code { word-break: break-all; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #666; font-size: 0.92em; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #c62828; font-weight: 600; }
.badge { background: #ffd92f; border-radius: 3px; padding: 0 4px; font-size: 0.85em; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.2em; margin: 0.2em 0; }
ul.tree ul { border-left: 2px solid #ddd; padding-left: 0.8em; }
ul.tree li { margin: 0.15em 0; } ul.tree li.front > span.node { font-weight: 600; }
nav a { margin-right: 0.8em; }
"""

_SECTIONS = (
    ("summary", "Summary"),
    ("front", "Pareto front"),
    ("budget", "Pick a model under a budget"),
    ("plots", "Plots"),
    ("family", "Family tree"),
    ("exports", "Exports"),
    ("cost", "Search cost"),
    ("events", "Events"),
    ("environment", "Environment"),
    ("configuration", "Configuration"),
)


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path."""
    run = load_run(run_dir)
    return rundir.write_file(run.run_dir, REPORT_NAME, render_report(run))


def render_report(run: RunData) -> str:
    """The report's HTML text."""
    sections = {
        "summary": _summary(run),
        "front": _front_table(run),
        "budget": budget_section(run),
        "plots": _plots(run),
        "family": _family_tree(run),
        "exports": _exports(run.run_dir / rundir.EXPORTS),
        "cost": _cost(run),
        "events": _events(run.events),
        "environment": _environment(run),
        "configuration": _configuration(run),
    }
    nav = " ".join(f'<a href="#{key}">{title}</a>' for key, title in _SECTIONS)
    body = "\n".join(
        f'<section id="{key}">\n<h2>{title}</h2>\n{sections[key]}\n</section>'
        for key, title in _SECTIONS
    )
    title = _e(f"hwnas report: {run.label}")
    generated = _utc(datetime.now(timezone.utc).timestamp())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{title}</h1>
<p class="note">Run directory <code>{_e(run.run_dir.resolve())}</code>; report written
{generated} by hwnas {_e(_version("hwnas"))}.</p>
<nav>{nav}</nav>
{body}
</body>
</html>
"""


# -- small helpers --------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "–"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {secs:02.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes):02d} min"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, attrs: str = "") -> str:
    """A table; header cells are escaped here, row cells must already be HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{attrs}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _compact(value: Any) -> str:
    """A value from JSON as short escaped text; ``{value, unit}`` reads as ``3.2 ms``."""
    if isinstance(value, Mapping):
        if "value" in value and isinstance(value["value"], (int, float)):
            text = format_value(float(value["value"]), str(value.get("unit", "")))
            extras = {k: v for k, v in value.items() if k not in ("value", "unit")}
            return _e(text) + (f" <span class='note'>({_compact(extras)})</span>" if extras else "")
        return ", ".join(f"{_e(k)}: {_compact(v)}" for k, v in value.items()) or "–"
    if isinstance(value, (list, tuple)):
        return _e(json.dumps(value)) if len(value) <= 8 else _e(json.dumps(value[:8])[:-1] + ", …]")
    if isinstance(value, bool) or value is None:
        return _e(json.dumps(value))
    if isinstance(value, float):
        return _e(format_number(value))
    return _e(value)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _unit(run: RunData, metric: str) -> str:
    return run.front.units.get(metric, "")


def _objective_heading(run: RunData, objective: Objective) -> str:
    """``lat_fpga_ms (min, ms)``."""
    unit = _unit(run, objective.metric)
    return f"{objective.metric} ({objective.direction.value}{', ' + unit if unit else ''})"


def _objective_values(run: RunData, trial: Trial) -> str:
    return ", ".join(
        f"{_e(o.metric)} {_e(format_value(trial.value(o.metric), _unit(run, o.metric), 6))}"
        for o in run.objectives
    )


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
        _duration(config.time_budget) if config.time_budget else "",
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


def _exports(export_dir: Path) -> str:
    usable = export_dir.is_dir() and not export_dir.is_symlink()  # never read outside the run
    files = [p for p in sorted(export_dir.glob("*.json")) if not p.is_symlink()] if usable else []
    if not files:
        return (
            "<p>No exports yet: <code>hwnas export RUN_DIR</code> (or "
            "<code>hwnas search --export front</code>) writes verified ONNX models and their "
            "results to <code>exports/</code>.</p>"
        )
    rows, details = [], []
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            rows.append([_e(path.name), "–", f"<span class='bad'>unreadable: {_e(exc)}</span>"])
            continue
        if not isinstance(data, Mapping):
            rows.append([_e(path.name), "–", "<span class='bad'>not a JSON object</span>"])
            continue
        rows.append(_export_row(path, data))
        details.append(_export_details(path, data))
    header = [
        "export",
        "trial",
        "verification",
        "max |Δ| vs PyTorch",
        "top-1 agreement",
        "latency (ONNX)",
        "latency (search)",
    ]
    rows = [r + ["–"] * (len(header) - len(r)) for r in rows]
    return _table(header, rows) + "\n" + "\n".join(details)


def _export_row(path: Path, data: Mapping[str, Any]) -> list[str]:
    verification = data.get("verification")
    verification = verification if isinstance(verification, Mapping) else {}
    passed = verification.get("passed")
    if passed is True:
        status = "<span class='ok'>passed</span>"
    elif passed is False:
        reason = verification.get("reason")
        status = "<span class='bad'>failed</span>" + (f": {_e(reason)}" if reason else "")
    else:
        status = "–"
    latency = data.get("latency")
    latency = latency if isinstance(latency, Mapping) else {}
    return [
        _e(data.get("name", path.stem)),
        _e(data.get("trial", "–")),
        status,
        _compact(verification.get("max_abs_diff", "–")),
        _compact(percent(verification.get("top1_agreement", "–"))),
        _compact(latency.get("onnx", "–")),
        _compact(latency.get("search_time", "–")),
    ]


def _export_details(path: Path, data: Mapping[str, Any]) -> str:
    order = ["genotype", "metrics", "verification", "latency", "int8"]
    keys = [k for k in order if k in data]
    keys += [k for k in data if k not in keys and k not in ("name", "trial")]
    shown = dict(data)
    if isinstance(shown.get("verification"), Mapping) and "top1_agreement" in shown["verification"]:
        verification = dict(shown["verification"])
        verification["top1_agreement"] = percent(verification["top1_agreement"])
        shown["verification"] = verification
    rows = [(_e(k), _compact(shown[k])) for k in keys]
    title = _e(data.get("name", path.stem))
    return (
        f"<details><summary>{title} (<code>exports/{_e(path.name)}</code>)</summary>"
        + _table(["field", "value"], rows)
        + "</details>"
    )


def _cost(run: RunData) -> str:
    timed = [t for t in run.trials if t.started is not None and t.finished is not None]
    if not timed:
        return "<p>No trial has finished yet.</p>"
    start = min(t.started for t in timed)  # type: ignore[type-var]
    end = max(t.finished for t in timed)  # type: ignore[type-var]
    evaluation = sum(t.duration or 0.0 for t in timed)
    rows = [
        ("wall time", f"{_duration(end - start)} ({_utc(start)} to {_utc(end)})"),
        ("busy wall time", f"{_duration(_union_length(timed))} (excludes pauses between sessions)"),
        ("evaluation time", f"{_duration(evaluation)} summed over {len(timed)} trials"),
    ]
    train = [t.value("train_time") for t in run.trials if "train_time" in t.measurements]
    if train:
        rows.append(("training time", f"{_duration(sum(train))} (the train_time metric)"))
    summary = "<table>\n" + "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    by_device: dict[str, list[float]] = {}
    for t in timed:
        by_device.setdefault(_devices_of(t), []).append(t.duration or 0.0)
    device_rows = [
        (
            _e(device),
            f"<span class='num'>{len(times)}</span>",
            _e(f"{sum(times) / 3600:.4g} h"),
            _e(_duration(sum(times) / len(times))),
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


__all__ = ["REPORT_NAME", "render_report", "write_report"]
