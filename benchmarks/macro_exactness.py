"""Check the macro space against NAS-Bench-Macro: parameters and MACs of all 6,561 networks.

Usage: ``python benchmarks/macro_exactness.py [PATH_TO_JSON]`` (default:
``../shared/data/nas-bench-macro_cifar10.json`` relative to the repository root). Prints a
summary and exits with status 1 when any network's count differs from the file.

Conventions compared: ``params`` = :func:`hwnas.profilers.cheap.count_params` (all parameters,
BatchNorm affine included); ``flops`` = :func:`hwnas.profilers.cheap.count_macs` at 3x32x32 with
10 classes (multiply-accumulates of convolutions and the linear layer, its bias excluded).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from hwnas.profilers.cheap import count_macs, count_params
from hwnas.spaces.macro import MacroSpace

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO / ".." / "shared" / "data" / "nas-bench-macro_cifar10.json"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_JSON
    if not path.is_file():
        print(f"error: {path} not found; pass the NAS-Bench-Macro JSON as the first argument")
        return 2
    table = json.loads(path.read_text())
    space = MacroSpace()
    start = time.perf_counter()
    mismatches: list[str] = []
    for key in sorted(table):
        record = table[key]
        # Meta device: shapes only, no memory and no arithmetic.
        with torch.device("meta"):
            model = space.build(space.parse(key), num_classes=10)
        params = count_params(model)
        macs = count_macs(model, space.input_shape)
        if params != record["params"] or macs != record["flops"]:
            mismatches.append(
                f"{key}: params {params} vs {record['params']} ({params - record['params']:+d}), "
                f"MACs {macs} vs {record['flops']} ({macs - record['flops']:+d})"
            )
    elapsed = time.perf_counter() - start
    matched = len(table) - len(mismatches)
    for line in mismatches[:20]:
        print(line)
    if len(mismatches) > 20:
        print(f"... and {len(mismatches) - 20} more")
    print(
        f"{matched}/{len(table)} architectures match params and MACs exactly "
        f"({len(mismatches)} mismatches, {elapsed:.1f} s)"
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
