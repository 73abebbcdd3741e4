"""Plots of real runs on the benchmark tables: files, pixel sizes, contents, comparisons."""

from __future__ import annotations

import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import hwnas
from hwnas.cli import app
from hwnas.errors import ConfigError
from hwnas.plot.data import hypervolume_trace, load_run, normalisation_bounds
from hwnas.plot.render import plot_runs, safe_name
from hwnas.plot.style import DPI, FIGSIZES, pixel_size

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_hw.csv"


def nb201_run(csv: Path, out: Path, *, objectives=None, strategy="nsga2", budget=60, **kw):
    return hwnas.run_search(
        space="nb201",
        strategy=strategy,
        objectives=objectives or ["acc_cifar10:max", "lat_fpga_ms:min"],
        benchmark=csv,
        budget=budget,
        seed=0,
        out=out,
        **kw,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs shared by the tests that only read them: name -> SearchResult."""
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present (see ../shared/data/README.md)")
    base = tmp_path_factory.mktemp("runs")
    three = ["acc_cifar10:max", "lat_fpga_ms:min", "lat_eyeriss_ms:min"]
    return {
        "nsga2": nb201_run(NB201_CSV, base / "nsga2"),
        "random": nb201_run(NB201_CSV, base / "random", strategy="random"),
        "three": nb201_run(NB201_CSV, base / "three", objectives=three),
    }


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (the first chunk, right after the signature)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def svg_texts(path: Path) -> str:
    """The SVG parsed (so it is well-formed XML) and returned as text."""
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return path.read_text()


def check_files(paths: list[Path], names: list[str], directory: Path) -> None:
    expected = {directory / f"{n}.{fmt}" for n in names for fmt in ("png", "svg")}
    assert {p.resolve() for p in paths} == {p.resolve() for p in expected}
    for p in paths:
        assert p.stat().st_size > 1000, p
        if p.suffix == ".png":
            assert png_size(p) == pixel_size(p.stem), p
        else:
            svg_texts(p)


def test_pixel_sizes_follow_figsize_and_dpi():
    for name, (w, h) in FIGSIZES.items():
        assert pixel_size(name) == (round(w * DPI), round(h * DPI))
        assert pixel_size(f"compare-{name}") == pixel_size(name)


def test_two_objectives_front_and_hypervolume(runs):
    result = runs["nsga2"]
    paths = plot_runs([result.run_dir])
    check_files(paths, ["front", "hypervolume"], result.run_dir / "plots")
    assert png_size(result.run_dir / "plots" / "front.png") == (800, 600)
    svg = svg_texts(result.run_dir / "plots" / "front.svg")
    # matplotlib keeps every text as a comment beside its glyphs: units and direction hints.
    assert "acc_cifar10 (%), higher is better" in svg
    assert "lat_fpga_ms (ms), lower is better" in svg
    assert f"knee: trial {result.front.knee.number}" in svg
    assert "Pareto front" in svg


def test_hypervolume_trace_ends_at_the_fronts_hypervolume(runs):
    result = runs["nsga2"]
    run = load_run(result.run_dir)
    x, hv = hypervolume_trace(run.trials, run.objectives, run.constraints, *normalisation_bounds([run], run.objectives))  # fmt: skip
    assert list(x) == list(range(1, 61))
    assert np.all(np.diff(hv) >= -1e-12), "hypervolume never decreases"
    assert hv[-1] == pytest.approx(result.hypervolume, rel=1e-9)
    assert run.front.knee.number == result.front.knee.number


def test_three_objectives_pairs_and_parallel(runs):
    result = runs["three"]
    paths = plot_runs([result.run_dir], formats=("png", "svg"))
    check_files(paths, ["pairs", "parallel", "hypervolume"], result.run_dir / "plots")
    assert png_size(result.run_dir / "plots" / "pairs.png") == (900, 900)
    pairs = svg_texts(result.run_dir / "plots" / "pairs.svg")
    assert "lat_eyeriss_ms (ms) ↓" in pairs and "acc_cifar10 (%) ↑" in pairs
    parallel = svg_texts(result.run_dir / "plots" / "parallel.svg")
    assert f"knee (trial {result.front.knee.number})" in parallel


def test_failed_and_infeasible_trials_are_drawn_apart(tmp_path, nb201_csv):
    # A table with only part of the space makes real failed trials (architectures not in it).
    partial = tmp_path / "partial.csv"
    lines = nb201_csv.read_text().splitlines()
    partial.write_text("\n".join(lines[:4000]) + "\n")
    result = nb201_run(
        partial,
        tmp_path / "run",
        strategy="random",
        constraints=["lat_fpga_ms<=3ms"],
    )
    counts = result.front.counts
    assert counts["failed"] > 0 and counts["complete"] > counts["feasible"] > 0
    paths = plot_runs([result.run_dir], formats=("svg",))
    svg = svg_texts(next(p for p in paths if p.stem == "front"))
    assert "infeasible" in svg
    assert f"failed ({counts['failed']}, none with values to draw)" in svg
    assert "constraint lat_fpga_ms&lt;=3ms" in svg


def test_compare_runs_with_one_normalisation(runs, tmp_path):
    a, b = runs["nsga2"], runs["random"]
    out = tmp_path / "vs-random"
    paths = plot_runs([a.run_dir, b.run_dir], out_dir=out, formats=("png",))
    assert {p.name for p in paths} == {"compare-front.png", "compare-hypervolume.png"}
    for p in paths:
        assert png_size(p) == pixel_size(p.stem)
    runs = [load_run(a.run_dir), load_run(b.run_dir)]
    ideal, nadir = normalisation_bounds(runs, runs[0].objectives)
    for run in runs:
        own_ideal, own_nadir = normalisation_bounds([run], run.objectives)
        assert np.all(ideal <= own_ideal) and np.all(nadir >= own_nadir)
    svg_paths = plot_runs([a.run_dir, b.run_dir], out_dir=out, formats=("svg",))
    text = svg_texts(next(p for p in svg_paths if p.stem == "compare-hypervolume"))
    assert "nsga2:" in text and "random:" in text and "all compared runs" in text


def test_compare_refuses_different_objectives(runs):
    with pytest.raises(ConfigError, match="different objectives"):
        plot_runs([runs["nsga2"].run_dir, runs["three"].run_dir])


def test_macro_and_single_objective(tmp_path, macro_json):
    two = hwnas.run_search(
        space="macro", strategy="random", objectives=["mean_acc:max", "params:min"],
        benchmark=macro_json, budget=40, out=tmp_path / "macro",
    )  # fmt: skip
    svg = svg_texts(next(p for p in plot_runs([two.run_dir]) if p.name == "front.svg"))
    assert "params (count), lower is better" in svg
    one = hwnas.run_search(
        space="macro", strategy="random", objectives=["mean_acc:max"],
        benchmark=macro_json, budget=20, out=tmp_path / "single",
    )  # fmt: skip
    paths = plot_runs([one.run_dir], formats=("png",))
    assert [p.name for p in paths] == ["progress.png"]
    assert png_size(paths[0]) == pixel_size("progress")


def test_plot_at_the_end_of_a_search(tmp_path, nb201_csv):
    result = nb201_run(nb201_csv, tmp_path / "run", budget=20, post={"plot": True})
    assert sorted(p.name for p in (result.run_dir / "plots").iterdir()) == [
        "front.png", "front.svg", "hypervolume.png", "hypervolume.svg",
    ]  # fmt: skip


def test_file_names_stay_inside_the_directory():
    for hostile in ["../../etc/passwd", "a/b", "..", "x\\..\\y", "", "ok-name_1.2"]:
        name = safe_name(hostile)
        assert "/" not in name and "\\" not in name and ".." not in name and name
    assert safe_name("ok-name_1.2") == "ok-name_1.2"


def test_cli_plot_and_errors(runs, tmp_path):
    result = runs["random"]
    runner = CliRunner()
    out = tmp_path / "cli"
    done = runner.invoke(app, ["plot", str(result.run_dir), "--out", str(out), "--format", "png"])
    assert done.exit_code == 0, done.output
    assert done.stdout.split() == [str(out / "front.png"), str(out / "hypervolume.png")]
    missing = runner.invoke(app, ["plot", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert missing.stderr.count("\n") == 1 and "not a hwnas run" in missing.stderr
    bad = runner.invoke(app, ["plot", str(result.run_dir), "--format", "gif"])
    assert bad.exit_code == 2 and "unknown plot format" in bad.stderr
    assert "Example" in runner.invoke(app, ["plot", "--help"]).stdout


def test_plots_and_report_need_no_display_pyplot_or_torch(runs, tmp_path):
    """The report renders every plot of the run, in a process without a display."""
    result = runs["random"]
    code = (
        "import sys; from hwnas.report.page import write_report; "
        f"write_report({str(result.run_dir)!r}); "
        "bad = [m for m in ('torch', 'matplotlib.pyplot') if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no DISPLAY, no MPLBACKEND
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
