"""Surrogate benchmarks: fit, save without pickle, answer in a run, refuse bad files."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.errors import BenchmarkError
from hwnas.spaces import make_space
from hwnas.surrogates.table import SurrogateBenchmark

runner = CliRunner()
METRICS = ["--metric", "acc_cifar10", "--metric", "lat_fpga_ms"]


def _fit(csv, out, *extra):
    return runner.invoke(
        app,
        ["surrogate", "fit", str(csv), "--space", "nb201", "--out", str(out), *METRICS, *extra],
    )


def _one_line_error(result, match):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert match in lines[0], lines[0]


def test_fit_save_load_and_search(tmp_path, nb201_csv):
    path = tmp_path / "nb201.npz"
    result = _fit(nb201_csv, path, "--train-fraction", "0.1", "--json")
    assert result.exit_code == 0, result.stderr
    fidelity = json.loads(result.stdout)
    # Fitted on 10% of NB201, measured on the other 90%.
    assert fidelity["acc_cifar10"]["held_out"] == 15625 - 1562
    assert fidelity["acc_cifar10"]["kendall_tau"] > 0.7
    assert fidelity["lat_fpga_ms"]["kendall_tau"] > 0.95
    # The file is plain arrays: it loads with pickle forbidden, and every entry is numeric.
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[k].dtype != object for k in archive.files)
    space = make_space("nb201")
    surrogate = SurrogateBenchmark.load(path, space)
    genotype = space.sample(np.random.default_rng(0))
    answer = surrogate.query(genotype, ["acc_cifar10", "lat_fpga_ms"])
    assert 0 < answer["acc_cifar10"].value < 100 and answer["lat_fpga_ms"].unit == "ms"
    assert answer["acc_cifar10"].stats["heldout_kendall_tau"] == pytest.approx(
        fidelity["acc_cifar10"]["kendall_tau"]
    )
    out = tmp_path / "run"
    search = runner.invoke(
        app,
        [
            "search", "--space", "nb201", "--benchmark", f"surrogate:{path}",
            "--objective", "acc_cifar10:max", "--objective", "lat_fpga_ms:min",
            "--strategy", "random", "--budget", "12", "--out", str(out),
        ],
    )  # fmt: skip
    assert search.exit_code == 0, search.stderr
    with sqlite3.connect(out / "hwnas.db") as db:
        rows = db.execute("SELECT device, stats FROM measurements").fetchall()
    assert len(rows) == 24
    assert all(d == "surrogate:nb201.npz" and "heldout_mae" in s for d, s in rows)


def test_bad_surrogate_files_are_refused_in_one_line(tmp_path, nb201_csv):
    args = [
        "search", "--space", "nb201", "--objective", "acc_cifar10:max",
        "--budget", "3", "--out", str(tmp_path / "never"), "--benchmark",
    ]  # fmt: skip
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00not a zip file at all" * 10)
    _one_line_error(runner.invoke(app, [*args, f"surrogate:{garbage}"]), "corrupt")
    # An archive holding a pickled object: np.load must not unpickle it.
    pickled = tmp_path / "pickled.npz"
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array([{"format": "hwnas-surrogate"}], dtype=object))
    pickled.write_bytes(buffer.getvalue())
    _one_line_error(runner.invoke(app, [*args, f"surrogate:{pickled}"]), "pickled.npz")
    # Plain arrays, but not a surrogate.
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.zeros(3))
    _one_line_error(runner.invoke(app, [*args, f"surrogate:{plain}"]), "no metadata")
    _one_line_error(
        runner.invoke(app, [*args, f"surrogate:{tmp_path / 'missing.npz'}"]), "does not exist"
    )
    assert not (tmp_path / "never").exists()


def test_tampered_arrays_and_wrong_space_are_refused(tmp_path, nb201_csv):
    path = tmp_path / "s.npz"
    assert _fit(nb201_csv, path, "--train-fraction", "0.05").exit_code == 0
    with pytest.raises(BenchmarkError, match="fitted for space 'nb201'"):
        SurrogateBenchmark.load(path, make_space("macro"))
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["net.w2"] = arrays["net.w2"][:, :3]  # a shape that does not fit
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    with pytest.raises(BenchmarkError, match="bad arrays"):
        SurrogateBenchmark.load(broken, make_space("nb201"))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:500])
    with pytest.raises(BenchmarkError, match="corrupt"):
        SurrogateBenchmark.load(truncated, make_space("nb201"))
    assert zipfile.is_zipfile(path)


def test_fit_refuses_bad_input_in_one_line(tmp_path, nb201_csv):
    _one_line_error(_fit(nb201_csv, tmp_path / "x.npz", "--metric", "nope"), "no metric nope")
    _one_line_error(_fit(nb201_csv, tmp_path / "x.npz", "--train-fraction", "1.5"), "fraction")
    _one_line_error(_fit(nb201_csv, tmp_path / "x.pkl"), "must end in .npz")
    assert not list(tmp_path.iterdir())
