"""Tabular NAS benchmarks: a table of architectures and their metrics, used as an evaluator.

A table maps a space's canonical form (one key column, or the keys of a JSON object) to
numeric metric columns. A lookup is a dictionary access, so a strategy can be studied on a
CPU in seconds, as the NAS literature does with NAS-Bench-201 and HW-NAS-Bench.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hwnas.errors import BenchmarkError, HwnasError
from hwnas.evaluate.base import EvalContext, MetricProvider
from hwnas.objectives.base import infer_unit
from hwnas.spaces.base import SearchSpace
from hwnas.types import Candidate, Genotype, Measurement

# Column names that hold the architecture in a CSV / Parquet table, in order of preference.
KEY_COLUMNS = ("arch_str", "arch", "architecture", "genotype", "spec", "key")
#: What a bad metric cell (empty, NaN, inf, not a number) does: stop with an error naming the
#: row and column, or make every query of that row's metric a FAILED trial.
BAD_CELLS = ("error", "fail")


class TabularBenchmark:
    """An in-memory table: canonical genotype text -> numeric metrics."""

    def __init__(
        self,
        *,
        path: str | Path,
        space: SearchSpace,
        key_column: str | None = None,
        bad_cells: str = "error",
    ):
        if bad_cells not in BAD_CELLS:
            raise BenchmarkError(
                f"unknown --bad-cells '{bad_cells}'; choose one of: {', '.join(BAD_CELLS)}"
            )
        self.path = Path(path)
        self.space = space
        self.bad_cells = bad_cells
        records, self.key_column = _read_table(self.path, key_column)
        self.columns = _numeric_columns(records)
        if not self.columns:
            raise BenchmarkError(
                f"benchmark '{self.path}' has no numeric metric columns; "
                "each row needs at least one number besides the architecture"
            )
        self._rows: dict[str, tuple[float, ...]] = {}
        self._index = {c: i for i, c in enumerate(self.columns)}
        self._bad: dict[tuple[str, str], str] = {}  # (spec, column) -> what is wrong
        for row, (spec, record) in enumerate(records, start=1):
            self._check_key(spec, row)
            if spec in self._rows:
                raise BenchmarkError(
                    f"benchmark '{self.path.name}' lists architecture '{spec}' twice (row {row}); "
                    "keep one row per architecture"
                )
            values = []
            for column in self.columns:
                value, problem = _cell(record.get(column))
                if problem is not None:
                    if bad_cells == "error":
                        raise BenchmarkError(
                            f"benchmark '{self.path.name}' row {row} ('{spec}'), column "
                            f"'{column}': {problem}; fix the table, or pass --bad-cells fail to "
                            "make such architectures FAILED trials"
                        )
                    self._bad[(spec, column)] = problem
                values.append(value)
            self._rows[spec] = tuple(values)
        self._check_keys_fit_space()
        self.units = {c: infer_unit(c) for c in self.columns}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, genotype: object) -> bool:
        return isinstance(genotype, Genotype) and genotype.spec in self._rows

    def genotypes(self) -> list[Genotype]:
        return [Genotype(self.space.name, spec) for spec in self._rows]

    def query(self, genotype: Genotype, metrics: Iterable[str]) -> dict[str, Measurement]:
        """Measurements of ``metrics`` for ``genotype``; BenchmarkError if it is not tabled."""
        row = self._rows.get(genotype.spec)
        if row is None:
            raise BenchmarkError(
                f"architecture '{genotype.spec}' is not in benchmark '{self.path.name}'"
            )
        metrics = list(metrics)
        for m in metrics:
            problem = self._bad.get((genotype.spec, m))
            if problem is not None:
                raise BenchmarkError(
                    f"benchmark '{self.path.name}' has no valid '{m}' for '{genotype.spec}' "
                    f"({problem})"
                )
        return {
            m: Measurement(m, row[self._index[m]], self.units[m], device=f"table:{self.path.name}")
            for m in metrics
        }

    def values(self, metric: str) -> list[float]:
        """Every row's value of ``metric`` (same order as :meth:`genotypes`)."""
        i = self._index[metric]
        return [row[i] for row in self._rows.values()]

    def _check_key(self, spec: str, row: int) -> None:
        if not spec or not spec.isprintable():
            raise BenchmarkError(
                f"benchmark '{self.path.name}' row {row}: the architecture {spec!r} is empty or "
                "holds control characters; fix the table"
            )

    def _check_keys_fit_space(self) -> None:
        """Every key must be an architecture of the space (then made canonical)."""
        for spec in self._rows:
            try:
                canonical = self.space.parse(spec).spec
            except HwnasError as exc:
                raise BenchmarkError(
                    f"benchmark '{self.path.name}' does not fit space '{self.space.name}': "
                    f"its key '{spec}' is not an architecture of that space ({exc})"
                ) from None
            if canonical != spec:
                self._canonicalise_keys()
                return

    def _canonicalise_keys(self) -> None:
        rows: dict[str, tuple[float, ...]] = {}
        bad: dict[tuple[str, str], str] = {}
        for spec, row in self._rows.items():
            try:
                canonical = self.space.parse(spec).spec
            except HwnasError as exc:
                raise BenchmarkError(
                    f"benchmark '{self.path.name}' has key '{spec}' that space "
                    f"'{self.space.name}' cannot read: {exc}"
                ) from None
            if canonical in rows:
                raise BenchmarkError(
                    f"benchmark '{self.path.name}' lists architecture '{canonical}' twice "
                    f"(as '{spec}' and another spelling); keep one row per architecture"
                )
            rows[canonical] = row
            bad.update({(canonical, c): p for (s, c), p in self._bad.items() if s == spec})
        self._rows, self._bad = rows, bad


def _read_table(path: Path, key_column: str | None) -> tuple[list[tuple[str, dict]], str]:
    if not path.is_file():
        raise BenchmarkError(
            f"benchmark file '{path}' does not exist; pass the path of a CSV, JSON or "
            "Parquet table with --benchmark"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return _read_json(path), "(json keys)"
        if suffix in (".parquet", ".pq"):
            return _rows_with_key(_read_parquet(path), path, key_column)
        if suffix in (".csv", ".tsv", ".txt"):
            return _rows_with_key(
                _read_csv(path, "\t" if suffix == ".tsv" else ","), path, key_column
            )
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error, ValueError) as exc:
        raise BenchmarkError(f"benchmark file '{path}' is corrupt or not a table: {exc}") from None
    raise BenchmarkError(
        f"benchmark file '{path}' has unknown type '{suffix}'; use .csv, .json or .parquet"
    )


def _read_json(path: Path) -> list[tuple[str, dict]]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BenchmarkError(
            f"benchmark file '{path}' must be a JSON object of records keyed by architecture, "
            'e.g. {"02012100": {"mean_acc": 89.2, "params": 890666}}'
        )
    return [(str(k), v) for k, v in data.items()]


def _read_csv(path: Path, delimiter: str) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        rows = list(reader)
        if reader.fieldnames is None or not rows:
            raise BenchmarkError(f"benchmark file '{path}' is empty")
        if any(None in row for row in rows):
            raise BenchmarkError(f"benchmark file '{path}' has rows with more fields than columns")
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise BenchmarkError(
            "reading Parquet tables needs pyarrow; run `pip install pyarrow` or convert to CSV"
        ) from None
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for bad files
        raise BenchmarkError(f"benchmark file '{path}' is corrupt: {exc}") from None


def _rows_with_key(
    rows: Sequence[dict[str, Any]], path: Path, key_column: str | None
) -> tuple[list[tuple[str, dict]], str]:
    columns = list(rows[0])
    if key_column is None:
        key_column = next((c for c in KEY_COLUMNS if c in columns), None)
    if key_column is None or key_column not in columns:
        raise BenchmarkError(
            f"benchmark file '{path}' has no architecture column; name one of "
            f"{', '.join(KEY_COLUMNS)} (columns found: {', '.join(columns)})"
        )
    return [(str(row[key_column]), row) for row in rows], key_column


def _cell(value: Any) -> tuple[float, str | None]:
    """A metric cell's value, and what is wrong with it (None when it is a finite number)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan, "the cell is empty"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return math.nan, f"{value!r} is not a number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan, f"{str(value)[:40]!r} is not a number"
    if not math.isfinite(number):
        return number, f"{value!r} is not a finite number"
    return number, None


def _numeric_columns(records: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Columns whose values are mostly numbers in the first rows (text and lists are skipped;
    a stray bad cell in a numeric column is reported when the rows are read)."""
    sample = [r for _, r in records[:50]]
    if not sample:
        return []
    columns: list[str] = []
    for column in sample[0]:
        given = [v for v in (r.get(column) for r in sample) if v not in (None, "")]
        if given and 2 * sum(_is_number(v) for v in given) > len(given):
            columns.append(column)
    return columns


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


#: Units of hardware costs. A table column in one of them is a lookup table of a device or a
#: count (HW-NAS-Bench's latencies, params, FLOPs): known for every architecture without
#: training, like a latency LUT, so strategies may use it exactly to screen candidates.
COST_UNITS = frozenset({"ms", "us", "s", "mJ", "J", "W", "B", "MAC", "FLOP", "count"})


def is_cost_column(name: str, unit: str) -> bool:
    """A hardware cost column (not a training outcome such as accuracy or training time)."""
    return unit in COST_UNITS and "train" not in name.lower()


class TableProvider(MetricProvider):
    """Every numeric column of a tabular benchmark.

    A lookup is free, but a quality column (accuracy, error, training time) stands in for
    training, so it counts as an expensive evaluation that strategies must not screen
    candidates with; the hardware cost columns are cheap (see :data:`COST_UNITS`).
    """

    cheap = False
    role = "table"

    def __init__(self, benchmark: TabularBenchmark) -> None:
        self.benchmark = benchmark
        self._cheap = frozenset(m for m, u in benchmark.units.items() if is_cost_column(m, u))

    def cheap_metrics(self) -> frozenset[str]:
        return self._cheap

    def units(self) -> Mapping[str, str]:
        return self.benchmark.units

    def evaluate(
        self, candidate: Candidate, metrics: Sequence[str], ctx: EvalContext
    ) -> dict[str, Measurement]:
        return self.benchmark.query(candidate.genotype, metrics)
