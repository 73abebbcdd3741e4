"""Verified ONNX exports: every space, a trained run, a table run, broken models, int8, the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import hwnas
from hwnas.cli import app
from hwnas.devices import load_device
from hwnas.errors import ConfigError, RunError
from hwnas.export.exporter import export_model, export_run
from hwnas.report.page import write_report
from hwnas.spaces import SPACES, make_space
from hwnas.training.datasets.catalog import load_dataset
from hwnas.training.weights import load_weights
from hwnas.types import Genotype

runner = CliRunner()
SMALL = {"stages": [[16, 1, 1], [32, 2, 1], [64, 2, 1]], "head_channels": 128}
QUICK = {"epochs": 1, "batch_size": 64, "data_fraction": 0.5, "train_device": "cpu"}
TABLE = ["acc_cifar10:max", "lat_fpga_ms:min"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ort(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# -- every space ------------------------------------------------------------------------------
@pytest.mark.parametrize("space_name", sorted(SPACES.names()))
def test_sampled_genotypes_of_every_space_export_and_verify(tmp_path, space_name):
    space = make_space(space_name)
    rng = np.random.default_rng(7)
    for i in range(2):
        genotype = space.sample(rng)
        torch.manual_seed(i)
        model = space.build(genotype, num_classes=10, in_channels=space.input_shape[0])
        result = export_model(
            model,
            name=f"{space_name}-{i}",
            out_dir=tmp_path,
            input_shape=space.input_shape,
            info={"genotype": genotype.to_json()},
        )
        assert result.passed, result.reason
        record = json.loads(result.json_path.read_text())
        verification = record["verification"]
        assert verification["passed"] and verification["reason"] is None
        assert verification["checker"].startswith("passed")
        assert verification["random"]["n"] == 32 and verification["top1_agreement"] == 1.0
        assert verification["random"]["worst_tolerance_ratio"] <= 1.0
        assert record["onnx"]["opset"] == 17 and record["onnx"]["self_contained"]
        assert record["input"]["shape"] == ["batch", *space.input_shape]
        assert record["output"]["shape"] == ["batch", 10]
        assert record["genotype"] == genotype.to_json() and record["hwnas_version"]
        # One self-contained file with a symbolic batch: any batch size runs.
        proto = onnx.load(str(result.onnx_path))
        assert not any(t.external_data for t in proto.graph.initializer)
        x = np.random.default_rng(i).standard_normal((3, *space.input_shape), dtype=np.float32)
        out = _ort(result.onnx_path).run(None, {"input": x})[0]
        with torch.no_grad():
            expected = model.eval()(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{space_name}-{i}.{ext}" for i in range(2) for ext in ("json", "onnx")
    )


# -- a trained run ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """Two mobilenet candidates trained for one epoch on digits, latency measured on ort-cpu."""
    out = tmp_path_factory.mktemp("trained") / "run"
    hwnas.run_search(
        space="mobilenet",
        space_options=SMALL,
        dataset="digits",
        device="ort-cpu",
        objectives=["error", "latency"],
        strategy="random",
        budget=2,
        training=QUICK,
        out=out,
    )
    return out


@pytest.mark.slow
def test_trained_models_of_a_real_run_export_verified_with_int8(trained_run):
    # samples: the whole validation split (287 images), as the search validated on.
    results = export_run(
        trained_run, select="front", int8=True, samples=1000, calibration_samples=32
    )
    assert results and all(r.passed for r in results), [r.reason for r in results]
    data = load_dataset("digits", seed=0)
    images, labels = data.samples("val", 1000)
    trials = {t.number: t for t in hwnas.results.open_run(trained_run).trials}
    for r in results:
        record = json.loads(r.json_path.read_text())
        assert r.name == f"trial-{r.trial:05d}" and record["selection"] == "front"
        assert record["weights"]["source"] == "trained" and record["weights"]["epochs"] == 1
        assert record["metrics"]["error"]["unit"] == "%"
        pre = record["input"]["preprocessing"]
        assert pre["dataset"] == "digits" and pre["mean"] == pytest.approx(list(data.mean))
        assert record["input"]["shape"] == ["batch", 1, 16, 16]
        validation = record["verification"]["validation"]
        assert validation["n"] == len(labels) == 287 and validation["passed"]
        onnx_accuracy = validation["accuracy"]["onnx"]["value"]
        assert onnx_accuracy == validation["accuracy"]["torch"]["value"]
        # The ONNX file scores what the search measured for the trained network.
        assert onnx_accuracy == pytest.approx(100 - trials[r.trial].value("error"), abs=0.3)
        # The file holds the trained weights: it matches the network rebuilt from them.
        state, meta = load_weights(trained_run / record["weights"]["file"])
        space = make_space("mobilenet", SMALL)
        model = space.build(Genotype.from_json(meta["genotype"]), num_classes=10, in_channels=1)
        model.load_state_dict(state)
        with torch.no_grad():
            expected = model.eval()(images).numpy()
        out = _ort(r.onnx_path).run(None, {"input": images.numpy()})[0]
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
        assert (out.argmax(1) == labels.numpy()).mean() * 100 == pytest.approx(onnx_accuracy)
        # Latency of the file on the run's device, beside the search's figure.
        latency = record["latency"]
        assert latency["onnx"]["unit"] == "ms" and latency["onnx"]["device"] == "ort-cpu"
        assert latency["onnx"]["value"] > 0 and latency["search_time"]["unit"] == "ms"
        assert latency["search_time"]["value"] == record["metrics"]["latency"]["value"]
        # int8: a smaller file, calibrated on training images, accuracy before and after.
        int8 = record["int8"]
        assert int8["written"] and r.int8_path.is_file()
        assert r.int8_path.stat().st_size < r.onnx_path.stat().st_size
        assert int8["size"]["int8"]["value"] == r.int8_path.stat().st_size
        assert "train split" in int8["calibration"]
        assert int8["accuracy"]["fp32"]["value"] == pytest.approx(onnx_accuracy)
        assert 0 <= int8["accuracy"]["int8"]["value"] <= 100
        assert int8["latency"]["int8"]["value"] > 0 and int8["latency"]["fp32"]["unit"] == "ms"
        q = onnx.load(str(r.int8_path))
        assert any(n.op_type == "QuantizeLinear" for n in q.graph.node)
    # The report shows the exports.
    text = write_report(trained_run).read_text()
    section = text[text.index('<section id="exports">') : text.index('<section id="cost">')]
    assert results[0].name in section and "passed" in section and "ort-cpu" in section


@pytest.mark.slow
def test_export_command_on_a_trained_run(trained_run):
    result = runner.invoke(app, ["export", str(trained_run), "--select", "best:error", "--name", "best"])  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "passed" in result.stdout and "best" in result.stdout
    assert (trained_run / "exports" / "best.onnx").is_file()
    record = json.loads((trained_run / "exports" / "best.json").read_text())
    trials = hwnas.results.open_run(trained_run).trials
    assert record["trial"] == min(trials, key=lambda t: t.value("error")).number


# -- a run on a table -------------------------------------------------------------------------
def test_table_run_exports_initialised_networks_and_says_so(tmp_path, nb201_csv):
    out = tmp_path / "run"
    run = hwnas.run_search(
        space="nb201", objectives=TABLE, benchmark=nb201_csv, budget=12, seed=3, out=out
    )
    slow = sorted(t.value("lat_fpga_ms") for t in run.trials)[len(run.trials) // 2]
    limit = f"lat_fpga_ms<={slow}"
    (result,) = export_run(
        out, select="best:acc_cifar10", constraints=[limit], int8=True, calibration_samples=8
    )
    feasible = [t for t in run.trials if t.value("lat_fpga_ms") <= slow]
    assert result.trial == max(feasible, key=lambda t: t.value("acc_cifar10")).number
    assert result.passed and result.name == "best-acc_cifar10"
    record = result.record
    assert record["weights"]["source"] == "initialised" and "table" in record["weights"]["note"]
    assert record["input"]["preprocessing"]["mean"] is None
    assert "validation" not in record["verification"]  # no dataset: random inputs only
    chosen = next(t for t in run.trials if t.number == result.trial)
    assert record["metrics"]["lat_fpga_ms"]["value"] == chosen.value("lat_fpga_ms")
    assert record["metrics"]["lat_fpga_ms"]["unit"] == "ms"
    assert (
        record["latency"]["onnx"]["device"] == "ort-cpu"
        and "no device" in record["latency"]["note"]
    )
    assert "random normal inputs" in record["int8"]["calibration"]
    assert record["int8"]["accuracy"] is None
    assert result.int8_path.stat().st_size < result.onnx_path.stat().st_size
    # The same model exported again without int8 drops the stale int8 file.
    (again,) = export_run(out, select=f"trial:{result.trial}", name="best-acc_cifar10")
    assert again.passed and again.int8_path is None
    assert not (out / "exports" / "best-acc_cifar10.int8.onnx").exists()


# -- failures ---------------------------------------------------------------------------------
class Unexportable(nn.Module):
    """Singular values: neither of torch's ONNX exporters can translate them."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(torch.linalg.svdvals(x[:, 0, :4, :4]))


class TracedConstant(nn.Module):
    """A Python number computed from the input: the exporter freezes the value it had for its
    example input, so the file silently differs from the network on every other input."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(x.flatten(1)) * float(x.std())


def test_a_model_the_exporter_cannot_handle_fails_clearly_and_leaves_no_onnx(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"left over from an earlier export")
    (tmp_path / "broken.json").write_text("{}")
    result = export_model(Unexportable(), name="broken", out_dir=tmp_path, input_shape=(1, 4, 4))
    assert not result.passed and result.onnx_path is None
    assert "cannot export this network" in result.reason and "\n" not in result.reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.failed.json"]
    record = json.loads(result.json_path.read_text())
    assert record["verification"]["passed"] is False
    assert record["verification"]["reason"] == result.reason
    assert record["verification"]["checker"] == "not reached"


def test_an_export_that_silently_differs_fails_verification(tmp_path):
    result = export_model(TracedConstant(), name="frozen", out_dir=tmp_path, input_shape=(1, 4, 4))
    assert not result.passed and "differs from PyTorch by up to" in result.reason
    assert not (tmp_path / "frozen.onnx").exists() and (tmp_path / "frozen.failed.json").is_file()
    record = json.loads(result.json_path.read_text())
    assert record["verification"]["random"]["passed"] is False
    assert record["onnx"]["file"] is None and record["onnx"]["opset"] == 17
    assert "latency" not in record  # a failed file is not timed


def test_bad_arguments_raise_one_clear_error(tmp_path):
    with pytest.raises(RunError, match="not a hwnas run"):
        export_run(tmp_path / "missing")
    with pytest.raises(ConfigError, match="cannot read selection"):
        export_run(tmp_path, select="kneee")
    with pytest.raises(ConfigError, match="bad export name"):
        export_model(Unexportable(), name="../out", out_dir=tmp_path, input_shape=(1, 4, 4))
    assert not any(tmp_path.iterdir())


# -- the command line -------------------------------------------------------------------------
def _one_line_error(args, match):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], lines
    assert "Traceback" not in result.stdout + result.stderr


def test_export_command_rejects_bad_input_with_one_line(tmp_path, nb201_csv):
    _one_line_error(["export", str(tmp_path / "nowhere")], "not a hwnas run")
    out = tmp_path / "run"
    hwnas.run_search(space="nb201", objectives=TABLE, benchmark=nb201_csv, budget=4, out=out)
    _one_line_error(["export", str(out), "--select", "middle"], "cannot read selection")
    _one_line_error(["export", str(out), "--select", "trial:99"], "no trial 99")
    _one_line_error(["export", str(out), "-c", "energy<=1mJ"], "energy")
    _one_line_error(["export", str(out), "--name", "a/b"], "bad export name")
    _one_line_error(["export", str(out), "--device", "no-such-device"], "unknown device")
    assert not (out / "exports").exists()


def test_search_with_export_writes_a_verified_model(tmp_path, nb201_csv):
    out = tmp_path / "run"
    args = ["search", "--space", "nb201", "--benchmark", str(nb201_csv), "--budget", "6",
            "-o", TABLE[0], "-o", TABLE[1], "--out", str(out), "--export", "knee", "--plot"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "export knee: verified" in result.stdout
    record = json.loads((out / "exports" / "knee.json").read_text())
    assert record["verification"]["passed"] and (out / "exports" / "knee.onnx").is_file()
    assert record["trial"] == hwnas.results.open_run(out).front.knee.number
    assert any((out / "plots").glob("*.png"))


def test_latency_profile_follows_the_run_device():
    from hwnas.export.source import onnx_profile

    profile, note = onnx_profile("cpu-eager")
    assert profile.runtime == "onnxruntime" and profile.providers == ("CPUExecutionProvider",)
    assert profile.threads == load_device("cpu-eager").threads and "PyTorch" in note
    # The default `cpu` already times the exported file: the same profile, no note.
    assert onnx_profile("cpu") == (load_device("cpu"), None)
    assert onnx_profile("ort-cpu") == (load_device("ort-cpu"), None)
    assert onnx_profile(None)[0].name == "ort-cpu"
