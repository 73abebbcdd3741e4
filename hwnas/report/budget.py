"""The report's 'pick a model under a budget' section."""

from __future__ import annotations

from collections.abc import Mapping

from hwnas.objectives.base import Direction, Objective
from hwnas.plot.axes import readable_count
from hwnas.plot.data import RunData, format_value
from hwnas.report.html import _e
from hwnas.types import Trial

#: Most budget rows shown per cost metric (a long front is thinned evenly, ends kept).
MAX_BUDGET_ROWS = 25


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
