"""Where each number came from (training, a device, counting, a table), and config text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from hwnas.plot.data import RunData
from hwnas.report.html import _e
from hwnas.types import Measurement


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
