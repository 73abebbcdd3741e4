"""The dashboard in headless Chromium while a search runs: a trial that finishes after the
page was opened appears on it without a reload. Skipped only where no Chromium is installed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_report import Browser, chromium

from hwnas.api import search
from hwnas.dashboard.server import serve
from hwnas.plot.data import load_run

NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_hw.csv"
CHROMIUM = chromium()

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")


def wait_for(browser: Browser, session: str, expression: str, timeout: float = 60.0):
    """Poll ``expression`` in the page until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while not (value := browser.evaluate(expression, session)):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.1)
    return value


def test_the_page_shows_a_trial_that_finished_after_it_was_opened(tmp_path):
    if not NB201_CSV.is_file():
        pytest.skip(f"{NB201_CSV} is not present")
    run_dir = tmp_path / "live"
    search(
        space="nb201", strategy="nsga2", objectives=["acc_cifar10:max", "lat_fpga_ms:min"],
        benchmark=NB201_CSV, budget=12, seed=0, out=run_dir,
    )  # fmt: skip
    server = serve([run_dir], port=0, poll_ms=250)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    profile = tmp_path / "profile"
    profile.mkdir()
    browser = Browser(CHROMIUM, profile)
    try:
        session, errors = browser.open(server.url)
        rows = "document.querySelectorAll('#trials tbody tr').length"
        assert wait_for(browser, session, f"{rows} === 12 && {rows}") == 12
        assert browser.evaluate("document.querySelector('tr[data-trial=\"19\"]')", session) is None
        front = "document.querySelectorAll('circle.front-member').length"
        assert browser.evaluate(front, session) > 0
        pick = "document.getElementById('pick-result').textContent"
        assert wait_for(browser, session, f"{pick}.startsWith('trial ') && {pick}")
        opened = time.time()
        # A real search process adds trials 12..19 while the page stays open.
        done = subprocess.run(
            [sys.executable, "-m", "hwnas.cli", "resume", str(run_dir), "--budget", "20"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert wait_for(browser, session, "document.body.dataset.trials === '20'")
        row = "document.querySelector('#trials tr[data-trial=\"19\"]')"
        assert browser.evaluate(f"{row}.dataset.state", session) == "complete"
        assert browser.evaluate(rows, session) == 20
        assert load_run(run_dir).trials[19].finished > opened
        assert errors == [] and browser.errors(session) == []  # no script error, no blocked load
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
        thread.join(10)
