"""Report sections from issue 18 item 9: a model under a budget, where each number comes from
(training, profiling, counting, a table) with training and profiling settings apart, top-1
agreement in percent, no empty configuration sections."""

from __future__ import annotations

import json

import pytest
from test_report import Page, nb201_search

import hwnas
from hwnas.objectives.pareto import is_feasible
from hwnas.plot.data import load_run
from hwnas.report.page import write_report
from hwnas.report.sources import percent, without_empty_sections

THREE = ["acc_cifar10:max", "lat_fpga_ms:min", "lat_eyeriss_ms:min"]


def _section(text: str, name: str) -> str:
    start = text.index(f'<section id="{name}">')
    return text[start : text.index("</section>", start)]


def _rows(section: str, metric: str) -> list[dict[str, str]]:
    table = section[section.index(f"data-metric='{metric}'") :]
    table = table[: table.index("</table>")]
    return [a for a in Page(table).all("tr") if "data-pick" in a]


def test_budget_tables_give_the_best_quality_within_each_budget(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run", objectives=THREE, budget=80)
    run = load_run(result.run_dir)
    section = _section(write_report(result.run_dir).read_text(), "budget")
    front = {t.number: t for t in run.front.members}
    feasible = [t for t in run.trials if is_feasible(t, run.constraints)]
    for metric in ("lat_fpga_ms", "lat_eyeriss_ms"):
        picks = [front[int(r["data-pick"])] for r in _rows(section, metric)]
        assert picks, metric
        costs = [t.value(metric) for t in picks]
        quality = [t.value("acc_cifar10") for t in picks]
        assert costs == sorted(costs) and quality == sorted(quality)
        assert len(set(quality)) == len(quality)  # every row buys better accuracy
        for t in picks:  # nothing feasible within that budget is more accurate
            within = [u for u in feasible if u.value(metric) <= t.value(metric)]
            assert max(u.value("acc_cifar10") for u in within) == t.value("acc_cifar10")
        # The cheapest budget is the cheapest front member, the last the most accurate one.
        assert costs[0] == min(t.value(metric) for t in front.values())
        assert quality[-1] == max(t.value("acc_cifar10") for t in front.values())
    assert "Under a lat_fpga_ms budget" in section and "Under a lat_eyeriss_ms budget" in section


def test_table_runs_say_where_numbers_come_from_and_show_no_empty_sections(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run", budget=20)
    text = write_report(result.run_dir).read_text()
    environment = _section(text, "environment")
    assert "looked up in the benchmark table (table:nb201_cifar10_hw.csv)" in environment
    assert "not recorded" not in text
    config = (result.run_dir / "config.toml").read_text()
    empty = [line for line in config.splitlines() if line.startswith("[")]
    shown = Page(_section(text, "configuration")).text
    shown_text = "".join(shown)
    for header in empty:
        body = config.split(header, 1)[1].split("\n[", 1)[0].strip()
        assert (header in shown_text) == bool(body), header


def test_top1_agreement_reads_as_a_percentage(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run", budget=10)
    exports = result.run_dir / "exports"
    exports.mkdir()
    for name, agreement in (("a", 1.0), ("b", 0.984375)):
        verification = {"passed": True, "max_abs_diff": 1e-6, "top1_agreement": agreement}
        (exports / f"{name}.json").write_text(
            json.dumps({"name": name, "trial": 0, "verification": verification})
        )
    section = _section(write_report(result.run_dir).read_text(), "exports")
    assert "<td>100 %</td>" in section and "<td>98.44 %</td>" in section
    assert "top1_agreement: 100 %" in section  # the details too
    assert percent(True) is True and percent(3) == 3 and percent("x") == "x"


def test_without_empty_sections():
    text = "a = 1\n\n[space_options]\n\n[training]\nepochs = 3\n\n[post]\n[x.y]\nz = 2\n"
    assert without_empty_sections(text) == "a = 1\n\n[training]\nepochs = 3\n\n[x.y]\nz = 2\n"


@pytest.mark.usefixtures("one_thread")
def test_trained_and_profiled_values_are_in_separate_tables(tmp_path):
    result = hwnas.run_search(
        space="mobilenet", space_options={"stages": [[8, 1, 1], [16, 2, 1]], "head_channels": 32},
        dataset="digits", device="cpu", objectives=["error", "latency", "params"],
        strategy="random", budget=1, training={"epochs": 1, "batch_size": 32},
        out=tmp_path / "trained",
    )  # fmt: skip
    text = write_report(result.run_dir).read_text()
    environment = _section(text, "environment")
    page = Page(environment)
    kinds = [a["data-kind"] for a in page.all("table") if "data-kind" in a]
    assert kinds[:2] == ["training", "profiling"] and "counting" in kinds
    assert "training on digits (cpu)" in environment
    assert "profiled on cpu" in environment
    assert "counted from the network (no device)" in environment
    assert "not recorded" not in text
    training = environment[environment.index("data-kind='training'") :]
    training = training[: training.index("</table>")]
    profiling = environment[environment.index("data-kind='profiling'") :]
    profiling = profiling[: profiling.index("</table>")]
    assert ">32 (1)<" in training and ">1 (1)<" in profiling  # batch_size, each in its own row
