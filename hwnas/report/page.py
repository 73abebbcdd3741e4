"""``report.html``: one self-contained page about a run (no JavaScript, a CSP loads nothing)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import hwnas.rundir as rundir
from hwnas.plot.data import RunData, load_run
from hwnas.report.budget import budget_section
from hwnas.report.exports import _exports
from hwnas.report.html import _e, _utc, _version
from hwnas.report.sections import (
    _configuration,
    _cost,
    _environment,
    _events,
    _family_tree,
    _front_table,
    _plots,
    _summary,
)

REPORT_NAME = rundir.REPORT


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


__all__ = ["REPORT_NAME", "render_report", "write_report"]
