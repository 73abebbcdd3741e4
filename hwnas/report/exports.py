"""The report's exports section: each verified ONNX file with its checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwnas.report.html import _compact, _e, _table
from hwnas.report.sources import percent


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
