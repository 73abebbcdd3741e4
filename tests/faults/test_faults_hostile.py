"""A hostile run directory (copied from someone else, or shared): planted symlinks never make
hwnas write, or read, outside it; temporary names are unpredictable; device-gate locks in the
shared temporary directory never follow symlinks. Each case checks that no byte outside the
run directory changed."""

from __future__ import annotations

import os

import pytest
from fault_helpers import cli, snapshot

from hwnas import rundir
from hwnas.errors import DeviceError, RunError
from hwnas.executors.gate import DeviceGate

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symlink and O_NOFOLLOW semantics")


@pytest.mark.parametrize(
    ("name", "command", "codes"),
    [
        ("hwnas.lock", ["resume", "{run}", "--budget", "10"], (2,)),
        ("config.toml", ["resume", "{run}", "--budget", "10"], (0,)),
        ("front.csv", ["front", "{run}"], (0,)),
        ("front.json", ["front", "{run}"], (0,)),
        ("report.html", ["report", "{run}"], (0,)),
        ("hwnas.db", ["front", "{run}"], (2,)),
        ("hwnas.db-wal", ["lineage", "{run}", "knee"], (2,)),
        (".front.csv.tmp", ["front", "{run}"], (0,)),  # the old predictable temporary names
        (".report.html.tmp", ["report", "{run}"], (0,)),
    ],
)
def test_a_planted_file_symlink_is_never_followed(table_run, outside, name, command, codes):
    victim = outside / "victim.txt"
    if name == "hwnas.db":  # a database elsewhere, e.g. another run of the user
        os.replace(table_run / name, outside / "other.db")
        victim = outside / "other.db"
    else:
        (table_run / name).unlink(missing_ok=True)
    (table_run / name).symlink_to(victim)
    before = snapshot(outside)
    result = cli(*[part.format(run=table_run) for part in command])
    if 2 in codes:
        assert "symlink" in result.one_error_line()
    else:
        assert result.code in codes and "Traceback" not in result.err, result.err
        if not name.startswith("."):
            assert not (table_run / name).is_symlink()  # replaced, not written through
    assert snapshot(outside) == before


@pytest.mark.parametrize(("name", "command"), [("exports", "export"), ("plots", "plot")])
def test_a_planted_directory_symlink_is_refused(table_run, outside, name, command):
    (table_run / name).symlink_to(outside / "victim_dir")
    before = snapshot(outside)
    assert "symlink" in cli(command, table_run).one_error_line()
    assert snapshot(outside) == before


def test_report_never_shows_an_outside_file_through_config_toml(table_run, outside):
    (table_run / "config.toml").unlink()
    (table_run / "config.toml").symlink_to(outside / "victim.txt")
    before = snapshot(outside)
    assert cli("report", table_run).code == 0
    html = (table_run / "report.html").read_text()
    assert "precious" not in html and "mean_acc" in html  # the stored settings instead
    assert snapshot(outside) == before


def test_a_binary_config_toml_falls_back_to_the_stored_settings(table_run):
    (table_run / "config.toml").write_bytes(bytes(range(256)) * 4)
    assert cli("report", table_run).code == 0
    assert "nas-bench-macro" in (table_run / "report.html").read_text()


def test_write_file_refuses_paths_out_of_the_run(tmp_path, outside):
    run = tmp_path / "run"
    run.mkdir()
    (run / "weights").symlink_to(outside / "victim_dir")
    before = snapshot(outside)
    for relative in ("../escape.txt", "/etc/x", "weights/trial-00000.safetensors", "a/../../b"):
        with pytest.raises(RunError):
            rundir.write_file(run, relative, b"x")
    assert snapshot(outside) == before


def test_temporary_names_are_unpredictable_and_never_left_behind(tmp_path, monkeypatch):
    names: list[str] = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *, dir_fd=None):
        if str(path).startswith(rundir.TMP_PREFIX):
            names.append(str(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", recording_open)
    for _ in range(3):
        rundir.write_file(tmp_path, "front.csv", "a,b\n")
    assert len(set(names)) == 3  # a fresh random name each time
    assert sorted(p.name for p in tmp_path.iterdir()) == ["front.csv"]


def test_write_unit_removes_stale_temporaries_and_commits_the_record_last(tmp_path):
    exports = tmp_path / "exports"
    (exports / ".tmp-killed").mkdir(parents=True)
    (exports / ".tmp-killed" / "model.onnx").write_bytes(b"x" * 1000)
    (exports / f"{rundir.TMP_PREFIX}dead-knee.onnx").write_bytes(b"half")
    (exports / "knee.json").write_text('{"old": true}')
    rundir.write_unit(
        tmp_path, "exports", {"knee.json": b"{}", "knee.onnx": b"onnx"}, commit="knee.json"
    )
    assert sorted(p.name for p in exports.iterdir()) == ["knee.json", "knee.onnx"]


def test_gate_lock_files_never_follow_symlinks(tmp_path, outside):
    gates = tmp_path / "gates"
    gates.mkdir(mode=0o700)
    (gates / "cpu.turnstile.lock").symlink_to(outside / "victim.txt")
    before = snapshot(outside)
    with (
        pytest.raises(DeviceError, match="symlink"),
        DeviceGate(resource="cpu", directory=gates).shared(),
    ):
        pass
    assert snapshot(outside) == before


def test_a_gate_directory_others_can_write_is_refused(tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    gates.chmod(0o777)
    with (
        pytest.raises(DeviceError, match="HWNAS_GATE_DIR"),
        DeviceGate(resource="cpu", directory=gates).exclusive(),
    ):
        pass
