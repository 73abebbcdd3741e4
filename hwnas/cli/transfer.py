"""Printing for `hwnas devices calibrate --transfer-from` (the command is in cli/devices)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def print_transfer(predictor: Any, profile: Any, path: Path) -> None:
    """The nested cross-validated fidelity, the known devices and where the table went."""
    from rich.console import Console
    from rich.table import Table

    from hwnas.profilers.transfer import column_name

    report = predictor.report
    f = report["predictor"]
    table = Table(
        "model", "within ±10%", "within ±5%", "MAPE", "Kendall tau",
        title=f"transfer calibration of '{profile.name}': fidelity by nested cross-validation "
        f"over its {report['n_train']} measurements",
    )  # fmt: skip
    tau = f"{f['kendall_tau']:.3f}" if not math.isnan(f["kendall_tau"]) else "-"
    table.add_row(
        report["model"], f"{f['within_10']:.1%}", f"{f['within_5']:.1%}", f"{f['mape']:.2%}", tau
    )
    console = Console()
    console.print(table)
    console.print(f"known devices: {', '.join(report['known_devices'])}")
    console.print(
        f"predicted {len(predictor.known.specs)} architectures: {path} "
        f"(column {column_name(profile.name)}; record {path.with_suffix('.json')})"
    )
