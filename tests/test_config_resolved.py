"""config.toml: written by tomli-w, no empty sections, the training and profiling values a run
used; the same seed trains to the same errors in-process and in a worker process."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwnas.api import search
from hwnas.config import dumps_toml, loads_toml

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(st.dictionaries(TEXT, TEXT | st.integers() | st.booleans(), max_size=5), TEXT)
def test_toml_round_trips_any_text(table, value):
    data = {"value": value, "section": table}
    back = loads_toml(dumps_toml(data))
    assert back.get("value") == value
    assert back.get("section", {}) == table


def test_carriage_return_round_trips_and_empty_sections_are_left_out():
    text = dumps_toml({"a": "one\rtwo\r\n", "empty": {}, "none": None, "t": {"x": None}})
    assert loads_toml(text) == {"a": "one\rtwo\r\n"}
    assert "[empty]" not in text and "[t]" not in text


def test_table_run_config_has_no_empty_sections(tmp_path, nb201_csv):
    search(
        space="nb201",
        benchmark=nb201_csv,
        objectives=["acc_cifar10:max", "lat_fpga_ms:min"],
        budget=5,
        out=tmp_path / "run",
    )
    text = (tmp_path / "run" / "config.toml").read_text()
    config = loads_toml(text)
    assert all(v for v in config.values() if isinstance(v, dict)), text
    assert config["executor"]["kind"] == "local"


def _train(out, **executor):
    return search(
        space="mobilenet",
        dataset="digits",
        device="cpu",
        objectives=["error", "params"],
        budget=2,
        seed=3,
        out=out,
        training={"epochs": 0.5, "data_fraction": 0.3, "threads": 1}
        if not executor
        else {"epochs": 0.5, "data_fraction": 0.3},
        executor=executor or None,
    )


@pytest.mark.timeout(600)
def test_resolved_settings_and_same_seed_same_errors_across_executors(tmp_path):
    local = _train(tmp_path / "local")
    pooled = _train(tmp_path / "process", kind="process", workers=1)
    config = loads_toml((tmp_path / "local" / "config.toml").read_text())
    training, profiling = config["training"], config["profiling"]
    assert training["epochs"] == 0.5 and training["batch_size"] == 64
    assert training["lr"] == pytest.approx(0.1) and training["optimizer"] == "sgd"
    assert training["threads"] == 1
    assert profiling["device_profile"]["threads"] == 1
    assert profiling["device_profile"]["batch_size"] == 1
    assert profiling["latency"] == "measured"
    # A process worker trains with cpus_per_trial = 1 thread by default, recorded as such ...
    pooled_config = loads_toml((tmp_path / "process" / "config.toml").read_text())
    assert pooled_config["training"]["threads"] == 1
    # ... so with equal threads the same seed gives the same trials and the same errors.
    errors = [[t.value("error") for t in r.trials] for r in (local, pooled)]
    specs = [[t.genotype.spec for t in r.trials] for r in (local, pooled)]
    assert specs[0] == specs[1]
    assert errors[0] == errors[1]


def test_hwnas_api_after_a_bare_import():
    done = subprocess.run(
        [sys.executable, "-c", "import hwnas; print(hwnas.api.search.__name__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "search"
