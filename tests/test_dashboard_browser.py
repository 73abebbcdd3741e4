"""The dashboard in headless Chromium while a search runs: a trial that finishes after the
page was opened appears on it without a reload. Skipped only where no Chromium is installed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cdp import Browser, find_chromium

from hwnas.api import search
from hwnas.dashboard import serve
from hwnas.plot import load_run

NB201_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_hw.csv"
CHROMIUM = find_chromium()

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")


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
    # The browser starts before the server's thread: preexec_fn and threads do not mix.
    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        thread.start()
        try:
            browser.goto(server.url)
            rows = "document.querySelectorAll('#trials tbody tr').length"
            assert browser.wait_for(f"{rows} === 12 && {rows}") == 12
            assert browser.evaluate("document.querySelector('tr[data-trial=\"19\"]')") is None
            assert browser.evaluate("document.querySelectorAll('circle.front-member').length") > 0
            pick = "document.getElementById('pick-result').textContent"
            assert browser.wait_for(f"{pick}.startsWith('trial ') && {pick}")
            opened = time.time()
            # A real search process adds trials 12..19 while the page stays open.
            done = subprocess.run(
                [sys.executable, "-m", "hwnas.cli", "resume", str(run_dir), "--budget", "20"],
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert browser.wait_for("document.body.dataset.trials === '20'")
            row = "document.querySelector('#trials tr[data-trial=\"19\"]')"
            assert browser.evaluate(f"{row}.dataset.state") == "complete"
            assert browser.evaluate(f"{rows}") == 20
            assert load_run(run_dir).trials[19].finished > opened
            assert browser.exceptions == []
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)
