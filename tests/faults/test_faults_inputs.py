"""Bad input gets one line and exit status 2, never a traceback, and leaves no run directory
behind; a search in which every trial failed exits 1 and says so."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest
from fault_helpers import cli

from hwnas.errors import DeviceError, RunError

SEARCH = ["search", "--space", "macro", "--budget", "3"]


def _table(path: Path, macro_table: Path, edit=None) -> Path:
    """A copy of the NAS-Bench-Macro table, ``edit(records)`` applied (JSON keeps NaN/inf)."""
    records = json.loads(macro_table.read_text())
    if edit is not None:
        edit(records)
    path.write_text(json.dumps(records))
    return path


def _set(key_index: int, column: str, value):
    def edit(records: dict) -> None:
        records[list(records)[key_index]][column] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_set(6, "mean_acc", math.nan), "row 7"),
        (_set(100, "params", math.inf), "not a finite number"),
        (_set(3000, "mean_acc", ""), "empty"),
        (_set(9, "flops", "lots"), "not a number"),
        (_set(6000, "std", None), "empty"),
    ],
)
def test_bad_table_cells_name_the_row_and_column(tmp_path, macro_table, edit, expected):
    table = _table(tmp_path / "t.json", macro_table, edit)
    out = tmp_path / "run"
    line = cli(*SEARCH, "--benchmark", table, "-o", "mean_acc:max", "--out", out).one_error_line()
    assert expected in line and "column" in line and "--bad-cells fail" in line
    assert not out.exists()


def test_keys_beyond_the_first_rows_are_checked(tmp_path, macro_table):
    def edit(records: dict) -> None:
        records["0120120x"] = dict(records[next(iter(records))])  # a key no macro network has

    table = _table(tmp_path / "t.json", macro_table, edit)
    line = cli(*SEARCH, "--benchmark", table, "-o", "mean_acc:max", "--out", tmp_path / "r")
    assert "0120120x" in line.one_error_line()


def test_duplicate_rows_and_nul_bytes_are_refused(tmp_path):
    header = "arch,mean_acc,params\n"
    twice = tmp_path / "twice.csv"
    twice.write_text(header + "01201200,90.1,1000\n00000000,80.0,900\n01201200,91.0,1000\n")
    line = cli(*SEARCH, "--benchmark", twice, "-o", "mean_acc:max", "--out", tmp_path / "a")
    assert "twice" in line.one_error_line()
    nul = tmp_path / "nul.csv"
    nul.write_bytes(header.encode() + b"0120\x001200,90.1,1000\n")
    cli(*SEARCH, "--benchmark", nul, "-o", "mean_acc:max", "--out", tmp_path / "b").one_error_line()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_bad_cells_can_be_failed_trials_and_every_trial_failed_exits_1(tmp_path, macro_table):
    def half_bad(records: dict) -> None:
        for i, key in enumerate(records):
            if i % 2:
                records[key]["mean_acc"] = math.nan

    table = _table(tmp_path / "half.json", macro_table, half_bad)
    args = ["search", "--space", "macro", "--benchmark", table, "-o", "mean_acc:max"]
    result = cli(*args, "--budget", 24, "--bad-cells", "fail", "--out", tmp_path / "half")
    assert result.code == 0, result.err
    from hwnas.results import read_run

    run = read_run(tmp_path / "half")
    failed = [t for t in run.trials if t.state.value == "failed"]
    assert 0 < len(failed) < 24 and all("no valid 'mean_acc'" in t.error for t in failed)

    def all_bad(records: dict) -> None:
        for key in records:
            records[key]["mean_acc"] = math.nan

    table = _table(tmp_path / "bad.json", macro_table, all_bad)
    result = cli(*args[:4], table, *args[5:], "--budget", 4, "--bad-cells", "fail",
                 "--out", tmp_path / "bad")  # fmt: skip
    assert "every trial" in result.one_error_line(code=1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-o", "mean_acc:max", "--budget", "ten"], "--budget"),
        (["-o", "error", "-o", "accuracy", "--dataset", "digits"], "same quantity"),
        (["-o", "mean_acc:max", "--latency", "lut"], "--device"),
        (["-o", "mean_acc:max", "-o", "params:min", "--strategy", "hillclimb"], "hillclimb"),
        (["-o", "mean_acc:max", "--bad-cells", "sometimes"], "--bad-cells"),
        (["-o", "mean_acc:max", "--budget", "0"], "budget"),
        (["-o", "mean_acc:max", "-c", "params<=-"], "params"),
    ],
)
def test_bad_search_settings(tmp_path, macro_table, args, expected):
    out = tmp_path / "run"
    base = ["search", "--space", "macro", "--benchmark", macro_table, "--budget", 3]
    line = cli(*base, *args, "--out", out)
    assert expected in line.one_error_line()
    assert not out.exists()


def test_unusable_out_paths(tmp_path, macro_table):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "sub", Path("/proc/hwnas-x"), tmp_path / "file"):
        args = ["-o", "mean_acc:max", "--out", out]
        cli(*SEARCH, "--benchmark", macro_table, *args).one_error_line()
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["macro:01201200", "--num-classes", "0"], "--num-classes"),
        (["macro:01201200", "--num-classes", "-1"], "--num-classes"),
        (["macro:01201200", "--repeats", "0"], "--repeats"),
        (["macro:01201200", "--device", "{binary}"], "not readable TOML"),
        (["{garbage}", "--device", "ort-cpu"], "not a readable ONNX"),
    ],
)
def test_bad_profile_input(tmp_path, args, expected):
    (tmp_path / "bin.toml").write_bytes(bytes(range(256)))
    (tmp_path / "g.onnx").write_bytes(b"\x08\x07garbage" * 40)
    filled = [a.format(binary=tmp_path / "bin.toml", garbage=tmp_path / "g.onnx") for a in args]
    assert expected in cli("profile", *filled).one_error_line()


def test_outputs_that_exist_as_the_wrong_kind(table_run, tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is a file" in cli("plot", table_run, "--out", tmp_path / "file").one_error_line()
    (table_run / "plots").write_text("x")
    cli("plot", table_run).one_error_line()
    (table_run / "exports").write_text("x")
    cli("export", table_run).one_error_line()
    (table_run / "front.csv").unlink()
    (table_run / "front.csv").mkdir()
    assert "directory" in cli("front", table_run).one_error_line()


@pytest.mark.parametrize(
    "content",
    [b"not safetensors at all" * 10, pickle.dumps({"weights": [1, 2, 3]}), "bad metadata"],
)
def test_a_bad_weights_file_at_export(table_run, content):
    from hwnas.results import read_run
    from hwnas.training.weights import save_weights

    (table_run / "weights").mkdir()
    for trial in read_run(table_run).trials:
        path = table_run / "weights" / f"trial-{trial.number:05d}.safetensors"
        if content == "bad metadata":
            import torch

            save_weights(path, {"w": torch.zeros(2)}, {"genotype": "macro:garbage"})
        else:
            path.write_bytes(content)
    assert "weights/trial-" in cli("export", table_run).one_error_line()


def test_a_lut_cache_with_wrong_types_says_rebuild(tmp_path):
    from hwnas.profilers.lut import LUT_FORMAT, LatencyTable

    path = tmp_path / "lut.json"
    path.write_text(json.dumps({"format": LUT_FORMAT, "space": "mobilenet", "entries": [1, 2]}))
    with pytest.raises(DeviceError, match="--rebuild"):
        LatencyTable.load(path)


def test_a_refused_pickle_in_a_supernet_checkpoint(tmp_path):
    import datetime

    import torch

    from hwnas.search.supernet.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path, Checkpoint(1, {"w": torch.zeros(2)}, [], {}, {"fingerprint": "f"}))
    optim = next(tmp_path.glob("epoch-*.pt"), None) or next(
        p for p in tmp_path.iterdir() if p.name.startswith("epoch-") and "safetensors" not in p.name
    )
    refused = {"when": datetime.datetime(2020, 1, 1)}  # not tensors and numbers only
    optim.write_bytes(pickle.dumps(refused, protocol=2))
    with pytest.raises(RunError, match="delete"):
        load_checkpoint(tmp_path, fingerprint="f")
