"""Readable plots (issue 18, item 9): outliers do not squeeze the front, counts read 325 k,
the knee carries its trial number, legends list only what is drawn, titles fit."""

from __future__ import annotations

import numpy as np
import pytest
from test_plot import NB201_CSV, nb201_run

import hwnas
from hwnas.plot.axes import readable_count, robust_limits
from hwnas.plot.data import load_run
from hwnas.plot.render import render_plots


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    return nb201_run(NB201_CSV, tmp_path_factory.mktemp("big") / "run", budget=300)


def _plots(run_dir):
    return {p.name: p for p in render_plots([load_run(run_dir)])}


def _legend_texts(fig):
    legends = [a.get_legend() for a in fig.axes if a.get_legend()] + list(fig.legends)
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def test_readable_count():
    assert readable_count(325_000) == "325 k"
    assert readable_count(1_234_567) == "1.23 M"
    assert readable_count(1_200_000) == "1.2 M"
    assert readable_count(950) == "950"
    assert readable_count(3.4e9) == "3.4 G"


def test_robust_limits_leave_outliers_out_but_keep_what_must_show():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(85, 95, 200), [10.0, 10.0, 10.2]])
    lo, hi = robust_limits(values, np.array([86.0, 94.0]), log=False)
    assert 75 < lo < 86 and 94 < hi < 96
    lo, _ = robust_limits(values, np.array([10.0]), log=False)  # a front member at 10% shows
    assert lo < 10.0
    lo, hi = robust_limits(np.array([1e3, 2e3, 5e5, 1e6]), np.array([]), log=True)
    assert lo < 1e3 and hi > 1e6


def test_a_real_nb201_front_spans_the_axis_and_outliers_sit_on_the_edge(big):
    run = load_run(big.run_dir)
    acc = np.array([t.value("acc_cifar10") for t in run.trials])
    assert acc.min() < 20, "the run has the 10%-accuracy cells this test is about"
    fig = _plots(big.run_dir)["front"].figure
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    front = [t.value("acc_cifar10") for t in run.front.members]
    share = (max(front) - min(front)) / (x1 - x0)
    full = (max(front) - min(front)) / (acc.max() - acc.min())
    assert share > 0.3 and share > 2 * full  # the issue saw 15% with the outliers in range
    assert x0 <= min(front) and max(front) <= x1
    y0, y1 = ax.get_ylim()
    lat = np.array([t.value("lat_fpga_ms") for t in run.trials])
    beyond = int(((acc < x0) | (acc > x1) | (lat < y0) | (lat > y1)).sum())
    assert (acc < x0).sum() >= 3
    assert f"{beyond} beyond the axes (drawn on the edge)" in _legend_texts(fig)
    assert f"knee (trial {run.front.knee.number})" in _legend_texts(fig)
    assert not any("infeasible" in t or "failed" in t for t in _legend_texts(fig))


def test_hypervolume_title_fits_on_one_line(big):
    fig = _plots(big.run_dir)["hypervolume"].figure
    ax = fig.axes[0]
    title = ax.title.get_text()
    fig.canvas.draw()
    assert "\n" not in title
    assert ax.title.get_window_extent().width < fig.bbox.width
    bottom, top = ax.get_ylim()
    finals = [line.get_ydata()[-1] for line in ax.get_lines()]
    assert bottom == 0.0 and top == pytest.approx(1.0 if max(finals) <= 1 else max(finals) * 1.05)


def test_pairs_and_parallel_legends(tmp_path, big):
    three = nb201_run(
        NB201_CSV, tmp_path / "three", budget=80,
        objectives=["acc_cifar10:max", "lat_fpga_ms:min", "lat_eyeriss_ms:min"],
    )  # fmt: skip
    plots = _plots(three.run_dir)
    knee = three.front.knee.number
    pairs = plots["pairs"].figure
    texts = _legend_texts(pairs)
    assert any(t.startswith(f"knee (trial {knee}") for t in texts)
    assert "infeasible or failed" not in texts  # none of either in this run
    annotations = [t.get_text() for ax in pairs.axes for t in ax.texts]
    assert annotations.count(str(knee)) == 3  # beside the star in every panel
    parallel = _legend_texts(plots["parallel"].figure)
    assert "feasible trials" in parallel
    assert any(t.startswith("Pareto front") for t in parallel)
    assert any(f"knee (trial {knee})" in t for t in parallel)


def test_infeasible_entry_appears_when_there_are_infeasible_trials(tmp_path):
    run = nb201_run(
        NB201_CSV, tmp_path / "constrained", budget=40,
        objectives=["acc_cifar10:max", "lat_fpga_ms:min", "lat_eyeriss_ms:min"],
        constraints=["lat_fpga_ms<=3ms"],
    )  # fmt: skip
    assert run.front.counts["complete"] > run.front.counts["feasible"]
    assert "infeasible or failed" in _legend_texts(_plots(run.run_dir)["pairs"].figure)


def test_parameter_axes_read_in_k_and_m(tmp_path, macro_json):
    result = hwnas.run_search(
        space="macro", strategy="random", objectives=["mean_acc:max", "params:min"],
        benchmark=macro_json, budget=40, out=tmp_path / "macro",
    )  # fmt: skip
    fig = _plots(result.run_dir)["front"].figure
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(label.endswith((" k", " M")) or label == "0" for label in labels)
