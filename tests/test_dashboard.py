"""``hwnas dashboard``: a real server on 127.0.0.1 over real runs; endpoints, bounds, errors,
and that it writes nothing into the runs it shows."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hwnas.dashboard.server as dashboard
from hwnas.api import search
from hwnas.cli import app
from hwnas.dashboard.server import serve
from hwnas.objectives.pareto import is_feasible
from hwnas.plot.data import load_run
from hwnas.store import RunStore
from hwnas.types import Candidate

NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_hw.csv"
OBJECTIVES = ["acc_cifar10:max", "lat_fpga_ms:min"]


def make_run(out: Path, budget: int, *, strategy: str = "random", seed: int = 0) -> Path:
    search(
        space="nb201", strategy=strategy, objectives=OBJECTIVES, benchmark=NB201_CSV,
        budget=budget, seed=seed, out=out,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present (see ../shared/data/README.md)")
    base = tmp_path_factory.mktemp("dash")
    return make_run(base / "a", 30), make_run(base / "b", 25, strategy="nsga2", seed=1)


class Served:
    def __init__(self, run_dirs, **kw):
        self.server = serve(run_dirs, port=0, **kw)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, method, target, *, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(self, target):
        status, _, body = self.request("GET", target)
        assert status == 200, body
        return json.loads(body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def served(runs):
    s = Served(runs, poll_ms=500)
    yield s
    s.close()


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_page_and_assets_load_nothing_from_elsewhere(served):
    status, headers, body = served.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert 'src="/app.js"' in page and 'href="/app.css"' in page
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for target, kind in (("/app.js", "text/javascript"), ("/app.css", "text/css")):
        status, headers, body = served.request("GET", target)
        assert status == 200 and headers["Content-Type"].startswith(kind)
        assert b"https://" not in body and b"innerHTML" not in body
    assert served.request("GET", "/favicon.ico")[0] == 204  # asked by browsers, not an error
    status, headers, body = served.request("HEAD", "/api/runs")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_snapshot_matches_the_run(served, runs):
    listed = served.json("/api/runs")
    assert [r["label"] for r in listed["runs"]] == ["a", "b"]
    assert listed["poll_ms"] == 500
    for index, run_dir in enumerate(runs):
        run = load_run(run_dir)
        snap = served.json(f"/api/run?run={index}")
        assert snap["counts"]["complete"] == run.front.counts["complete"]
        assert [t["number"] for t in snap["front"]] == [t.number for t in run.front.members]
        assert snap["knee"] == run.front.knee.number
        assert snap["hypervolume"] == pytest.approx(run.front.hypervolume)
        assert snap["hv_trace"][-1][1] == pytest.approx(run.front.hypervolume)
        assert len(snap["trials"]) == len(run.trials)
        assert [t["number"] for t in snap["trials"]] == sorted(
            (t.number for t in run.trials), reverse=True
        )
        shown = {p["number"] for p in snap["points"]} | {t["number"] for t in snap["front"]}
        assert shown == {t.number for t in run.trials}
        assert snap["objectives"][0] == {"metric": "acc_cifar10", "direction": "max", "unit": "%"}
        assert "lat_fpga_ms" in snap["budget_metrics"]
        assert "acc_cifar10" not in snap["budget_metrics"]


@pytest.mark.parametrize("limit", [2.0, 3.5, 5.0])
def test_pick_is_the_best_feasible_trial_under_the_budget(served, runs, limit):
    run = load_run(runs[0])
    within = [
        t for t in run.trials if is_feasible(t, run.constraints) and t.value("lat_fpga_ms") <= limit
    ]
    got = served.json(f"/api/pick?run=0&metric=lat_fpga_ms&max={limit}")
    if not within:
        assert got["trial"] is None
        return
    best = max(t.value("acc_cifar10") for t in within)
    assert got["trial"]["values"]["acc_cifar10"] == best
    assert got["trial"]["values"]["lat_fpga_ms"] <= limit
    assert got["candidates"] == len(within)
    # The best under a budget on an objective is always on the front.
    assert got["on_front"] is True
    none = served.json("/api/pick?run=0&metric=lat_fpga_ms&max=0.001")
    assert none["trial"] is None


@pytest.mark.parametrize(
    ("method", "target", "headers", "status"),
    [
        ("POST", "/api/runs", {}, 405),
        ("DELETE", "/api/run?run=0", {}, 405),
        ("PUT", "/", {}, 405),
        ("GET", "/etc/passwd", {}, 404),
        ("GET", "/../hwnas.db", {}, 404),
        ("GET", "/api/run", {}, 400),
        ("GET", "/api/run?run=7", {}, 404),
        ("GET", "/api/run?run=-1", {}, 404),
        ("GET", "/api/run?run=0&run=1", {}, 400),
        ("GET", "/api/pick?run=0&metric=lat_fpga_ms", {}, 400),
        ("GET", "/api/pick?run=0&metric=lat_fpga_ms&max=abc", {}, 400),
        ("GET", "/api/pick?run=0&metric=lat_fpga_ms&max=inf", {}, 400),
        ("GET", "/api/pick?run=0&metric=nope&max=1", {}, 404),
        ("GET", "/api/runs?" + "x" * 2000, {}, 414),
        ("GET", "/", {"Host": "attacker.example:80"}, 403),
        ("GET", "/api/runs", {"Content-Length": "5"}, 400),
    ],
)
def test_bad_requests_get_a_status_and_a_json_reason(served, method, target, headers, status):
    body = b"hello" if headers.get("Content-Length") else None
    got, reply_headers, reply = served.request(method, target, headers=headers, body=body)
    assert got == status
    assert "error" in json.loads(reply)
    if status == 405:
        assert reply_headers["Allow"] == "GET, HEAD"


def test_the_server_writes_nothing_into_the_runs(runs):
    before = {d: _digests(d) for d in runs}
    s = Served(runs)
    try:
        for _ in range(3):
            for index in range(len(runs)):
                s.json(f"/api/run?run={index}")
                s.json(f"/api/pick?run={index}&metric=lat_fpga_ms&max=3")
    finally:
        s.close()
    assert {d: _digests(d) for d in runs} == before  # no -wal, -shm or changed byte


def test_snapshots_are_bounded(served, monkeypatch):
    monkeypatch.setattr(dashboard, "MAX_TABLE_ROWS", 7)
    monkeypatch.setattr(dashboard, "MAX_POINTS", 5)
    monkeypatch.setattr(dashboard, "MAX_HV_POINTS", 4)
    served.server.views._cache.clear()
    snap = served.json("/api/run?run=0")
    assert len(snap["trials"]) == 7 and snap["trials"][0]["number"] == 29
    assert len(snap["points"]) <= 5 and len(snap["hv_trace"]) <= 4
    assert snap["hv_trace"][-1][0] == 30  # the last evaluation is always kept


def test_a_search_writing_meanwhile_shows_up(tmp_path):
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    run_dir = make_run(tmp_path / "live", 10)
    s = Served([run_dir])
    try:
        assert s.json("/api/run?run=0")["counts"]["trials"] == 10
        done = subprocess.run(
            [sys.executable, "-m", "hwnas.cli", "resume", str(run_dir), "--budget", "16"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        snap = s.json("/api/run?run=0")
        assert snap["counts"]["trials"] == 16
        assert snap["trials"][0]["number"] == 15
    finally:
        s.close()


def test_cli_errors(runs, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["dashboard", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a hwnas run" in missing.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = runner.invoke(app, ["dashboard", str(runs[0]), "--port", str(port)])
    assert busy.exit_code == 2 and "choose another --port" in busy.output
    bad = runner.invoke(app, ["dashboard", str(runs[0]), "--refresh", "0.01"])
    assert bad.exit_code == 2 and "--refresh" in bad.output


def test_running_and_queued_trials_come_first_while_a_writer_holds_the_run(tmp_path):
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    run_dir = make_run(tmp_path / "held", 6)
    s = Served([run_dir])
    try:
        # A writer (as a running search) queues two candidates and starts the first.
        with RunStore.open(run_dir) as store:
            done = store.trials()
            fresh = [Candidate(t.genotype) for t in done[:2]]
            queued = store.add_candidates(fresh, {})
            store.mark_running(queued[0].number, time.time())
            snap = s.json("/api/run?run=0")
        assert snap["counts"]["running"] == 1 and snap["counts"]["queued"] == 1
        states = [(t["number"], t["state"]) for t in snap["trials"]]
        assert states[:3] == [(6, "running"), (7, "queued"), (5, "complete")]
    finally:
        s.close()
