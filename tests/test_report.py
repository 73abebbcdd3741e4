"""report.html of real runs: front table, embedded plots, escaping, exports, lineage, Chromium."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hwnas
from hwnas.cli import app
from hwnas.config import RunConfig, dumps_toml
from hwnas.evaluate.evaluator import Evaluator, available_units
from hwnas.evaluate.providers import build_providers
from hwnas.objectives.base import parse_objective
from hwnas.objectives.resolve import resolve_objectives
from hwnas.plot.render import plot_runs
from hwnas.report.page import write_report
from hwnas.results import SearchResult, open_run
from hwnas.runner import Budget, run
from hwnas.search.base import Strategy
from hwnas.spaces import make_space
from hwnas.store import RunStore
from hwnas.types import Candidate, Genotype, Measurement, Trial, TrialState

OBJECTIVES = ["acc_cifar10:max", "lat_fpga_ms:min"]


class Page(HTMLParser):
    """What a test needs from the report: elements by tag, attributes, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag]


def nb201_search(csv: Path, out: Path, **kw: Any) -> SearchResult:
    options = {"strategy": "nsga2", "budget": 60, "objectives": OBJECTIVES} | kw
    return hwnas.run_search(space="nb201", benchmark=csv, seed=0, out=out, **options)


def test_report_has_front_table_plots_and_sections(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run")
    path = write_report(result.run_dir)
    assert path == result.run_dir / "report.html"
    text = path.read_text()
    page = Page(text)
    rows = [a for a in page.all("tr") if "data-trial" in a]
    assert [int(a["data-trial"]) for a in rows] == [t.number for t in result.front.members]
    knee_rows = [a for a in rows if a.get("class") == "knee"]
    assert [int(a["data-trial"]) for a in knee_rows] == [result.front.knee.number]
    for t in result.front.members:
        assert f"<code>{t.genotype.spec}</code>" in text
    assert "acc_cifar10 (max, %)" in text and "lat_fpga_ms (min, ms)" in text
    images = page.all("img")
    assert len(images) == 2  # front and hypervolume
    for img in images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        png = base64.b64decode(img["src"][len(prefix) :])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    sections = [a["id"] for a in page.all("section")]
    assert sections == [
        "summary", "front", "budget", "plots", "family", "exports", "cost", "events", "environment",
        "configuration",
    ]  # fmt: skip
    assert (result.run_dir / "config.toml").read_text().splitlines()[0] in "".join(page.text)
    assert "table:nb201_cifar10_hw.csv" in text  # device hours and environment
    assert "device hours" in text and "wall time" in text
    self_contained(page)


def self_contained(page: Page) -> None:
    """Nothing to load from anywhere: no scripts, links or remote sources."""
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    for tag, attrs in page.elements:
        if "href" in attrs:
            assert attrs["href"].startswith("#"), (tag, attrs)  # in-page anchors only
        if "src" in attrs:
            assert attrs["src"].startswith("data:"), (tag, attrs)  # embedded only


def test_report_escapes_text_from_the_run(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run", budget=20)
    hostile = "<script>alert('spec')</script>|&amp;"
    with RunStore.open(result.run_dir) as store:
        # A trial that beats everything (so it is on the front) and one that failed.
        best, failed = store.add_candidates(
            [Candidate(Genotype("nb201", hostile)), Candidate(Genotype("nb201", "x<y"))], {}
        )
        now = time.time()
        measurements = {
            "acc_cifar10": Measurement("acc_cifar10", 99.9, "%", device="<b>dev</b>"),
            "lat_fpga_ms": Measurement("lat_fpga_ms", 0.01, "ms", device="<b>dev</b>"),
        }
        store.finish(
            Trial(best.number, best.candidate, TrialState.COMPLETE, measurements, None, now, now)
        )
        store.finish(
            Trial(failed.number, failed.candidate, TrialState.FAILED, {},
                  "<img src=x onerror=alert(1)>", now, now)
        )  # fmt: skip
    text = write_report(result.run_dir).read_text()
    page = Page(text)
    assert "<script>" not in text and "<img src=x" not in text and "<b>dev" not in text
    assert "&lt;script&gt;alert(&#x27;spec&#x27;)&lt;/script&gt;|&amp;amp;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert hostile in "".join(page.text)  # the browser shows the original text
    assert f"data-trial='{best.number}'" in text or f'data-trial="{best.number}"' in text
    self_contained(page)


def test_report_shows_exports_and_tolerates_odd_files(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run", budget=20)
    exports = result.run_dir / "exports"
    exports.mkdir()
    knee = result.front.knee
    (exports / "knee.json").write_text(
        json.dumps(
            {
                "name": "knee",
                "trial": knee.number,
                "genotype": knee.genotype.to_json(),
                "metrics": {"acc_cifar10": {"value": 93.2, "unit": "%"}},
                "verification": {"passed": True, "max_abs_diff": 3.1e-6, "top1_agreement": 1.0},
                "latency": {
                    "onnx": {"value": 1.23, "unit": "ms", "device": "ort-cpu"},
                    "search_time": {"value": 1.31, "unit": "ms"},
                },
                "int8": {"verification": {"passed": False, "reason": "accuracy dropped"}},
            }
        )
    )
    (exports / "partial.json").write_text(json.dumps({"trial": 3, "verification": {"passed": False, "reason": "<nan> in output"}}))  # fmt: skip
    (exports / "broken.json").write_text("{not json")
    (exports / "list.json").write_text("[1, 2]")
    text = write_report(result.run_dir).read_text()
    section = text[text.index('<section id="exports">') : text.index('<section id="cost">')]
    assert "knee" in section and "passed" in section and "3.1e-06" in section
    assert "1.23 ms" in section and "1.31 ms" in section and "ort-cpu" in section
    assert "accuracy dropped" in section and "&lt;nan&gt; in output" in section
    assert "broken.json" in section and "unreadable" in section and "not a JSON object" in section


class Lineage(Strategy):
    """A test strategy that builds on earlier trials, as LEMONADE does: it records parents."""

    name = "lineage-test"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.done: list[Trial] = []

    def ask(self, n: int) -> list[Candidate]:
        complete = [t for t in self.done if t.state is TrialState.COMPLETE]
        if len(complete) < 3:
            g = self.draw_new(lambda: self.space.sample(self.rng))
            return [Candidate(g)] if g is not None else []
        # Children of the most accurate trials, so the front descends from a few families.
        best = sorted(complete, key=lambda t: -t.value("acc_cifar10"))[:3]
        parent = best[int(self.rng.integers(len(best)))]
        g = self.draw_new(lambda: self.space.mutate(parent.genotype, self.rng))
        if g is None:
            return []
        return [Candidate(g, parent=parent.number, transfer={"kind": "mutate<edge>"})]

    def tell(self, trials: Sequence[Trial]) -> None:
        self.done.extend(trials)


def lineage_run(csv: Path, out: Path) -> Path:
    """A real run (store, runner, table) by a strategy that records parents, plus events."""
    config = RunConfig(space="nb201", strategy="lineage-test", objectives=OBJECTIVES,
                       benchmark=str(csv), budget=40)  # fmt: skip
    space = make_space("nb201")
    providers = build_providers(config, space)
    objectives, constraints = resolve_objectives(
        [parse_objective(o) for o in OBJECTIVES], [], available_units(providers)
    )
    evaluator = Evaluator(providers, [o.metric for o in objectives])
    store = RunStore.create(out, config.to_dict())
    try:
        (out / "config.toml").write_text(dumps_toml(config.to_dict()))
        run(store=store, strategy=Lineage(space=space, objectives=objectives), evaluator=evaluator,
            objectives=objectives, constraints=constraints, budget=Budget(evaluations=40))  # fmt: skip
        for round_ in (1, 2):
            store.log_event("predictor", {"round": round_, "kendall_tau": 0.5 + round_ / 10})
    finally:
        store.close()
    return out


def test_report_family_tree_and_events(tmp_path, nb201_csv):
    out = lineage_run(nb201_csv, tmp_path / "lineage")
    result = open_run(out)
    trials = {t.number: t for t in result.trials}
    text = write_report(out).read_text()
    family = text[text.index('<section id="family">') : text.index('<section id="exports">')]
    assert "<ul class='tree'>" in family
    assert "by mutate&lt;edge&gt;" in family
    for member in result.front.members:
        assert f"<a href='#trial-{member.number}'>trial {member.number}</a>" in family
        if member.parent is not None:
            assert f"from trial {member.parent} by" in family
        ancestor = member.parent
        while ancestor is not None:  # every ancestor is in the tree, above its descendants
            assert f">trial {ancestor}<" in family, ancestor
            assert family.index(f">trial {ancestor}<") < family.index(f">trial {member.number}<")
            ancestor = trials[ancestor].parent
    assert any(m.parent is not None for m in result.front.members)
    events = text[text.index('<section id="events">') : text.index('<section id="environment">')]
    assert "predictor (2)" in events and "kendall_tau" in events and "0.7" in events
    self_contained(Page(text))


def test_report_and_plots_of_a_run_without_trials(tmp_path):
    config = RunConfig(space="nb201", strategy="random", objectives=[*OBJECTIVES, "lat_eyeriss_ms"],
                       constraints=["lat_fpga_ms<=3ms"])  # fmt: skip
    RunStore.create(tmp_path / "empty", config.to_dict()).close()
    text = write_report(tmp_path / "empty").read_text()
    assert "the front is empty" in text and "No trial has finished yet" in text
    self_contained(Page(text))
    assert len(plot_runs([tmp_path / "empty"], formats=("png",))) == 3


def test_cli_report(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run", budget=20)
    runner = CliRunner()
    done = runner.invoke(app, ["report", str(result.run_dir)])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == str(result.run_dir / "report.html")
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1
    assert "Example" in runner.invoke(app, ["report", "--help"]).stdout


# -- headless Chromium ----------------------------------------------------------------------
def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# Chromium reads DevTools commands from fd 3 and writes replies to fd 4: a tiny trampoline
# moves the pipe ends there (subprocess cannot renumber descriptors, and dash only knows 0-9).
_ON_FDS_3_AND_4 = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
    "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"
)


def _high_fd(fd: int) -> int:
    """The same pipe end on a descriptor >= 10, so that moving it to 3 or 4 clobbers nothing."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (no port, no network)."""

    ERROR_EVENTS = ("Runtime.exceptionThrown", "Runtime.consoleAPICalled", "Log.entryAdded")

    def __init__(self, executable: str, profile: Path) -> None:
        to_r, self._to = map(_high_fd, os.pipe())  # commands: ours -> Chromium's fd 3
        self._from, from_w = map(_high_fd, os.pipe())  # replies: Chromium's fd 4 -> ours
        args = [
            executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-pipe",
            "about:blank",
        ]  # fmt: skip
        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _ON_FDS_3_AND_4, str(to_r), str(from_w), *args],
                pass_fds=(to_r, from_w),
                stdout=log,
                stderr=log,
            )
        os.close(to_r)
        os.close(from_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        reply = self.wait(lambda m, i=self._id: m.get("id") == i)
        assert "error" not in reply, reply
        return reply.get("result", {})

    def wait(self, done, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if done(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                return {}
            ready, _, _ = select.select([self._from], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(self._from, 1 << 16)
                assert chunk, f"Chromium closed the pipe: {self.log.read_text()[-2000:]}"
                self._buffer += chunk

    def open(self, url: str) -> tuple[str, list[str]]:
        """Load ``url``; return the session and the console errors seen while loading."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        loaded = self.wait(lambda m: m.get("method") == "Page.loadEventFired")
        assert loaded, f"{url} did not load"
        self.wait(lambda m: False, timeout=0.5)  # late console messages
        return session, self.errors(session)

    def errors(self, session: str) -> list[str]:
        found = []
        for event in self.events:
            if event.get("sessionId") != session or event["method"] not in self.ERROR_EVENTS:
                continue
            params = event["params"]
            if event["method"] == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:300])
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):  # fmt: skip
                found.append(json.dumps(params["args"])[:300])
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"] + " " + params["entry"].get("url", ""))
        return found

    def evaluate(self, expression: str, session: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        return result["result"].get("value")

    def close(self) -> None:
        try:
            os.write(self._to, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._to)
            os.close(self._from)


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed")
def test_report_opens_in_headless_chromium_without_console_errors(tmp_path, nb201_csv):
    result = nb201_search(nb201_csv, tmp_path / "run", budget=40)
    report = write_report(result.run_dir)
    # A page with known faults first: the check must see them, or it proves nothing.
    faulty = tmp_path / "faulty.html"
    faulty.write_text(
        "<!DOCTYPE html><html><body><img src='missing.png'>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(chromium(), Path(profile))
        try:
            _, faults = browser.open(faulty.as_uri())
            assert len(faults) == 3, faults  # missing file, console.error, exception
            session, errors = browser.open(report.as_uri())
            assert errors == []
            rows = browser.evaluate(
                "[...document.querySelectorAll('table.front-table tbody tr')]"
                ".map(r => Number(r.dataset.trial))",
                session,
            )
            assert rows == [t.number for t in result.front.members]
            images = browser.evaluate(
                "[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])",
                session,
            )
            assert images == [[True, 800, 600], [True, 800, 500]]
        finally:
            browser.close()
