"""Property-based fuzzing of the CLI's inputs (Hypothesis): objectives, constraints, options,
budgets, genotype strings and table cells. Whatever the input, hwnas exits 0 or 2, never with
a traceback; on 2 it prints one line and leaves no run directory behind.

The example counts are small so that the whole module runs in well under a minute on CI;
``HWNAS_FUZZ_EXAMPLES`` raises them for a longer local run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from fault_helpers import MACRO_JSON, cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCALE = int(os.environ.get("HWNAS_FUZZ_EXAMPLES", "1"))
FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,  # the same inputs on every CI run; raise SCALE to explore further
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

METRICS = ["mean_acc", "params", "flops", "std", "error", "latency", "macs", "acc", "x"]
NASTY = st.one_of(
    st.text(alphabet="abc01:<=>.-+eE \t,/\\'\"%\x00é∞", max_size=12),
    st.sampled_from(["nan", "inf", "-inf", "ms", "1e999", ":", "<=", "𝟙"]),
)
OBJECTIVE = st.one_of(
    st.builds(
        "{}{}".format,
        st.sampled_from(METRICS),
        st.sampled_from(["", ":min", ":max", ":MAX", ":", ":up"]),
    ),
    NASTY,
)
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["", "1e999", "-0", "0x10", "1_000", "½"]),
)
CONSTRAINT = st.one_of(
    st.builds(
        "{}{}{}{}".format,
        st.sampled_from(METRICS),
        st.sampled_from(["<=", ">=", "<", ">", "==", "=<", "=", " <= "]),
        NUMBER,
        st.sampled_from(["", "ms", "us", "MB", "%", "M", "parsecs"]),
    ),
    NASTY,
)
OPTION = st.builds(
    "{}={}".format, st.sampled_from(["population_size", "x", "seed", ""]), NUMBER | NASTY
)


def _search_args(draw_objectives, draw_constraints, options, budget, strategy, space_options):
    args = ["search", "--space", "macro", "--benchmark", str(MACRO_JSON), "--budget", budget]
    args += ["--strategy", strategy]
    for o in draw_objectives:
        args += ["-o", o]
    for c in draw_constraints:
        args += ["-c", c]
    for o in options:
        args += ["--strategy-option", o]
    for o in space_options:
        args += ["--space-option", o]
    return args


def _check(result, out: Path | None) -> None:
    assert "Traceback" not in result.out + result.err, result.err
    assert result.code in (0, 2), (result.code, result.err)
    if result.code == 2:
        lines = [line for line in result.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.err
        if out is not None:
            assert not out.exists(), "a refused search left its run directory behind"


@settings(FUZZ, max_examples=40 * SCALE)
@given(
    objectives=st.lists(OBJECTIVE, min_size=0, max_size=3),
    constraints=st.lists(CONSTRAINT, max_size=2),
    options=st.lists(OPTION, max_size=1),
    space_options=st.lists(OPTION, max_size=1),
    budget=st.sampled_from(["2", "0", "-1", "ten", "2.5", "", "99999999999999999999"]),
    strategy=st.sampled_from(["random", "nsga2", "hillclimb", "lemonade", "nope"]),
)
def test_search_inputs(objectives, constraints, options, space_options, budget, strategy):
    root = Path(tempfile.mkdtemp(prefix="hwnas-fuzz-"))
    try:
        out = root / "run"
        args = _search_args(objectives, constraints, options, budget, strategy, space_options)
        _check(cli(*args, "--out", out), out)
    finally:
        shutil.rmtree(root)


@settings(FUZZ, max_examples=40 * SCALE)
@given(
    space=st.sampled_from(["macro", "nb201", "chain", "mobilenet", "nope", ""]),
    spec=st.one_of(NASTY, st.text(max_size=40), st.from_regex(r"[0-2]{6,10}", fullmatch=True)),
)
def test_genotype_strings(space, spec):
    _check(cli("genotype", f"{space}:{spec}"), None)


CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**30), 10**30),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def macro_records() -> dict:
    return json.loads(MACRO_JSON.read_text())


@settings(
    FUZZ,
    max_examples=8 * SCALE,
    suppress_health_check=[*FUZZ.suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 6560), st.sampled_from(["mean_acc", "params", "flops"]), CELL),
        min_size=1,
        max_size=3,
    )
)
def test_table_cells(macro_records, cells):
    root = Path(tempfile.mkdtemp(prefix="hwnas-fuzz-"))
    try:
        records = {k: dict(v) for k, v in macro_records.items()}
        keys = list(records)
        for row, column, value in cells:
            records[keys[row]][column] = value
        table = root / "table.json"
        table.write_text(json.dumps(records))
        out = root / "run"
        args = ["search", "--space", "macro", "--benchmark", table, "-o", "mean_acc:max"]
        _check(cli(*args, "-o", "params:min", "--budget", 2, "--out", out), out)
    finally:
        shutil.rmtree(root)
