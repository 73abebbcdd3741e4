"""Segmentation: synthetic shapes, the encoder + head network, mIoU, a SqueezeNAS search."""

import pytest
import torch
from supernet_helpers import SMALL

from hwnas.errors import DatasetError
from hwnas.search.supernet.network import Supernet, extract_state
from hwnas.segmentation.data import IGNORE, load_segmentation, synthetic_shapes
from hwnas.segmentation.metrics import confusion_matrix, miou
from hwnas.segmentation.model import build_segmentation_network
from hwnas.segmentation.search import search_segmentation
from hwnas.segmentation.task import SegmentationTask
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.training.settings import TrainSettings
from hwnas.types import TrialState


@pytest.fixture(scope="module")
def shapes():
    return synthetic_shapes(images=60, size=24, seed=1)


def test_synthetic_shapes_are_reproducible_and_labelled(shapes):
    again = synthetic_shapes(images=60, size=24, seed=1)
    assert torch.equal(shapes.train.images, again.train.images)
    assert (len(shapes.train), len(shapes.val), len(shapes.test)) == (36, 12, 12)
    assert shapes.input_shape == (3, 24, 24) and shapes.num_classes == 4
    assert shapes.train.images.dtype == torch.uint8 and shapes.train.masks.dtype == torch.int64
    labels = set(shapes.train.masks.unique().tolist())
    assert labels == {0, 1, 2, 3}  # background and the three shapes all occur
    assert not torch.equal(synthetic_shapes(images=60, size=24, seed=2).train.masks,
                           shapes.train.masks)  # fmt: skip


def test_miou_of_known_predictions():
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, IGNORE]])
    assert miou(confusion_matrix(target.clamp(max=2), target, 3))[0] == pytest.approx(100.0)
    prediction = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 0, 1]])
    score, per_class = miou(confusion_matrix(prediction, target, 3))
    # class 0: 4 of 5 pixels predicted right, 1 extra -> 3/5; class 1: 4/5; class 2: 2/3.
    assert per_class == pytest.approx([60.0, 80.0, 200.0 / 3.0])
    assert score == pytest.approx((60.0 + 80.0 + 200.0 / 3.0) / 3.0)
    # A class neither labelled nor predicted is left out of the mean.
    score4, per_class4 = miou(confusion_matrix(prediction, target, 4))
    assert score4 == pytest.approx(score) and per_class4[3] != per_class4[3]


def test_segmentation_forward_and_one_hot_supernet(shapes):
    space = MobileNetSpace(**SMALL)
    task = SegmentationTask(space=space, data=shapes, settings=TrainSettings(batch_size=8))
    genotype = space.parse("ir_k3_e3-ir_k5_e1-skip")
    torch.manual_seed(0)
    supernet = Supernet(space, head=task.make_head(), in_channels=3, upsample=True).eval()
    network = build_segmentation_network(space, genotype, num_classes=4).eval()
    network.load_state_dict(extract_state(supernet.state_dict(), space, genotype), strict=True)
    x = shapes.normalise(shapes.val.images[:5])
    with torch.no_grad():
        out = network(x)
        assert out.shape == (5, 4, 24, 24)
        assert torch.equal(supernet(x, *supernet.one_hot(genotype)), out)
    loss = task.loss(out, shapes.val.masks[:5])
    assert torch.isfinite(loss) and loss > 0


def test_voc_and_cityscapes_say_where_to_put_them(tmp_path):
    with pytest.raises(DatasetError, match=r"VOC 2012 is not in .*never downloads"):
        load_segmentation("voc", data_dir=tmp_path)
    with pytest.raises(DatasetError, match=r"Cityscapes is not in .*cityscapes-dataset\.com"):
        load_segmentation("cityscapes", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="choose one of shapes, voc, cityscapes"):
        load_segmentation("ade20k")


def test_squeezenas_searches_segmentation_on_synthetic_shapes(tmp_path):
    data = synthetic_shapes(images=80, size=24, seed=0)
    result = search_segmentation(
        out=tmp_path / "seg",
        data=data,
        space_options={"stages": [[8, 1, 1], [16, 2, 1]], "head_channels": 32},
        strategy_options={"epochs": 2, "warmup_epochs": 1, "theta_lr": 0.2,
                          "targets": [0.0, 1.0], "samples_per_head": 1, "finetune": True},
        training={"epochs": 2, "batch_size": 8, "lr": 0.05, "train_device": "cpu"},
        objectives=["miou:max", "macs"],
        budget=2,
    )  # fmt: skip
    assert [t.state for t in result.trials] == [TrialState.COMPLETE] * 2
    cheap, dear = sorted(result.trials, key=lambda t: t.candidate.info["tradeoff"])
    # The target at the cheapest architecture finds fewer MACs than the one at the dearest.
    assert cheap.value("macs") < dear.value("macs")
    for t in result.trials:
        assert t.measurements["miou"].unit == "%" and 0 <= t.value("miou") <= 100
        assert t.candidate.transfer["kind"] == "supernet"
    # Trained a little, the networks beat predicting background everywhere (~25 % mIoU here).
    assert max(t.value("miou") for t in result.trials) > 35
    assert (tmp_path / "seg" / "front.csv").is_file() and result.front.members


@pytest.mark.slow
def test_segmentation_search_from_the_cli_and_resume(tmp_path):
    from typer.testing import CliRunner

    from hwnas.cli import app

    out = tmp_path / "seg-cli"
    args = [
        "search", "--space", "mobilenet", "--strategy", "squeezenas",
        "--dataset", "segmentation:shapes", "--objective", "miou:max", "--objective", "macs",
        "--budget", "2", "--epochs", "1", "--batch-size", "8", "--train-device", "cpu",
        "--space-option", "stages=[[8,1,1],[16,2,1]]", "--space-option", "head_channels=32",
        "--strategy-option", "epochs=1", "--strategy-option", "warmup_epochs=0",
        "--strategy-option", "samples_per_head=1", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    runner = CliRunner()
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "2 complete, 0 failed" in " ".join(done.output.split())  # rich wraps lines
    header = (out / "front.csv").read_text().splitlines()[0]
    assert header == "trial,genotype,miou,macs"
    resumed = runner.invoke(app, ["resume", str(out), "--budget", "3", "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    bad = runner.invoke(app, [*args[:6], "segmentation:nope", *args[7:-1], str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert "unknown segmentation dataset 'nope'" in " ".join(bad.output.split())
    assert not (tmp_path / "x").exists()
