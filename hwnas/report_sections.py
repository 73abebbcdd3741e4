"""Report sections that help a reader act on a run: which model to take under a budget, and
where each number came from (training, profiling on a device, counting, a benchmark table)."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwnas.objectives.base import Direction, Objective
from hwnas.plot.axes import readable_count
from hwnas.plot.data import RunData, format_value
from hwnas.types import Measurement, Trial

#: Most budget rows shown per cost metric (a long front is thinned evenly, ends kept).
MAX_BUDGET_ROWS = 25


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def readable(value: float | None, unit: str) -> str:
    """``325 k`` for counts, ``2.906 ms`` otherwise."""
    if value is None:
        return "–"
    return readable_count(value) if unit == "count" else format_value(value, unit)


# -- pick a model under a budget ------------------------------------------------------------
def budget_section(run: RunData) -> str:
    """For each cost objective: the best model on the quality objective within each budget.

    The steps of the answer are the front members' own costs, so every row is a front member:
    the best quality you can have for at most that cost.
    """
    members = run.front.members
    quality = next((o for o in run.objectives if o.direction is Direction.MAX), None)
    quality = quality or (run.objectives[0] if run.objectives else None)
    costs = [o for o in run.objectives if o is not quality and o.direction is Direction.MIN]
    if not members or quality is None or not costs:
        return "<p>Nothing to choose between: the front is empty or has only one objective.</p>"
    units = run.front.units
    knee = run.front.knee.number if run.front.knee is not None else None
    parts = [
        f"<p>The best <b>{_e(quality.metric)}</b> you can have within a budget. Read down a "
        "table to your budget: the row is the model to take; the next row up costs less and "
        "gives up some quality. Every row is a Pareto-front member. "
        "<code>hwnas export RUN_DIR --select trial:N</code> exports it.</p>"
    ]
    for cost in costs:
        parts.append(_budget_table(run, members, quality, cost, units, knee))
    return "\n".join(parts)


def _budget_table(
    run: RunData,
    members: list[Trial],
    quality: Objective,
    cost: Objective,
    units: Mapping[str, str],
    knee: int | None,
) -> str:
    rows: list[tuple[float, Trial]] = []
    best: Trial | None = None
    for t in sorted(members, key=lambda t: (t.value(cost.metric), t.number)):
        better = best is None or quality.sign * t.value(quality.metric) < quality.sign * best.value(
            quality.metric
        )
        if better:  # only the members that improve quality for a higher budget are steps
            best = t
            rows.append((t.value(cost.metric), t))
    if len(rows) > MAX_BUDGET_ROWS:
        step = (len(rows) - 1) / (MAX_BUDGET_ROWS - 1)
        rows = [rows[round(i * step)] for i in range(MAX_BUDGET_ROWS)]
    others = [o for o in run.objectives if o is not quality and o is not cost]
    head = [f"budget: {cost.metric} at most", f"best {quality.metric}", "trial"]
    head += [o.metric for o in others] + ["genotype"]
    body = []
    for limit, t in rows:
        cells = [
            _e(readable(limit, units.get(cost.metric, ""))),
            _e(readable(t.value(quality.metric), units.get(quality.metric, ""))),
            f"{t.number}" + (" <span class='badge'>knee</span>" if t.number == knee else ""),
            *(_e(readable(t.value(o.metric), units.get(o.metric, ""))) for o in others),
            f"<code>{_e(t.genotype.spec)}</code>",
        ]
        body.append(
            f"<tr data-pick='{t.number}'>"
            + "".join(
                f"<td class='num'>{c}</td>" if i < 3 + len(others) else f"<td>{c}</td>"
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (
        f"<h3>Under a {_e(cost.metric)} budget</h3>\n<table class='budget' "
        f"data-metric='{_e(cost.metric)}'>\n<thead><tr>{header}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


# -- where the numbers came from ------------------------------------------------------------
def source(m: Measurement, benchmark: str | None) -> tuple[str, str]:
    """(kind, description) of what produced ``m``: training, profiling, counting or a table."""
    env = m.env
    device = str(m.device or env.get("device") or "")
    if device.startswith("table:"):
        return "table", f"looked up in the benchmark table ({device})"
    if device:
        return "profiling", f"profiled on {device}"
    if "train_device" in env or "epochs" in env:
        where = env.get("train_device")
        data = env.get("dataset")
        return "training", "training" + (f" on {data}" if data else "") + (
            f" ({where})" if where else ""
        )
    if benchmark:
        return "table", f"benchmark table {Path(benchmark).name}"
    if m.unit == "count":
        return "counting", "counted from the network (no device)"
    return "computed", "computed from the network (no device)"


_KIND_TITLES = {
    "training": "Training",
    "profiling": "Profiling",
    "counting": "Counting",
    "table": "Benchmark table",
    "computed": "Computed",
}


def environment_tables(run: RunData) -> str:
    """What produced each metric, then the recorded environment, one table per kind of source
    (training and profiling settings never share a row)."""
    produced: dict[str, set[str]] = {}
    env: dict[str, dict[str, Counter[str]]] = {}
    for t in run.trials:
        for m in t.measurements.values():
            kind, text = source(m, run.config.benchmark)
            produced.setdefault(text, set()).add(m.metric)
            for key, value in m.env.items():
                kind_env = env.setdefault(kind, {})
                kind_env.setdefault(str(key), Counter())[_env_text(value)] += 1
    rows = "\n".join(
        f"<tr><td>{_e(text)}</td><td>{_e(', '.join(sorted(metrics)))}</td></tr>"
        for text, metrics in produced.items()
    )
    parts = [
        "<h3>Where the numbers come from</h3>",
        f"<table>\n<thead><tr><th>source</th><th>metrics</th></tr></thead>\n<tbody>\n{rows}\n"
        "</tbody>\n</table>",
    ]
    for kind in _KIND_TITLES:
        if kind not in env:
            continue
        lines = []
        for key, values in sorted(env[kind].items()):
            shown = values.most_common(4)
            text = "; ".join(f"{v} ({n})" for v, n in shown)
            if len(values) > 4:
                text += f"; … {len(values) - 4} other values"
            lines.append(f"<tr><th>{_e(key)}</th><td>{_e(text)}</td></tr>")
        parts += [
            f"<h3>{_KIND_TITLES[kind]} environment</h3>",
            "<p class='note'>Recorded with the measurements: value (number of measurements).</p>",
            "<table class='env' data-kind='" + kind + "'>\n" + "\n".join(lines) + "\n</table>",
        ]
    return "\n".join(parts)


def _env_text(value: Any) -> str:
    """Floats to 4 significant digits (losses, throughputs), everything else as JSON."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, sort_keys=True)


def without_empty_sections(toml_text: str) -> str:
    """``config.toml`` without ``[section]`` headers that have no keys below them."""
    lines = toml_text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            body = []
            for following in lines[i + 1 :]:
                s = following.strip()
                if s.startswith("[") and s.endswith("]"):
                    break
                if s and not s.startswith("#"):
                    body.append(s)
            if not body:
                continue
        kept.append(line)
    text = "\n".join(kept)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


def percent(value: Any) -> Any:
    """A fraction in [0, 1] as ``"100 %"``; anything else as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return f"{value * 100:.4g} %"
    return value
