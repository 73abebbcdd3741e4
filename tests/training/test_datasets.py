"""Datasets: digits offline, image folders from real PNG files, the offline download message."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.errors import DatasetError
from hwnas.training.datasets.catalog import dataset_info, ensure_available, load_dataset
from hwnas.training.datasets.splits import TensorSplit, stratified_split


def _keys(split: TensorSplit) -> set[bytes]:
    return {
        bytes(x.numpy().tobytes()) + bytes([int(y)]) for x, y in zip(split.images, split.labels)
    }


def test_digits_splits_are_fixed_disjoint_and_stratified():
    a = load_dataset("digits", seed=0)
    assert (len(a.train), len(a.val), len(a.test)) == (1151, 287, 359)  # 1,797 images in all
    assert a.num_classes == 10 and a.input_shape == (1, 16, 16)
    assert a.train.images.dtype == torch.uint8 and a.train.images.shape[1:] == (1, 16, 16)
    assert not _keys(a.train) & _keys(a.test) and not _keys(a.val) & _keys(a.test)
    counts = np.bincount(a.val.labels.numpy(), minlength=10)
    assert counts.min() >= 25, "every class is in the validation split"
    # The validation split follows the seed; the test split never does.
    b = load_dataset("digits", seed=1)
    assert torch.equal(a.test.images, b.test.images)
    assert not torch.equal(a.val.labels, b.val.labels)
    assert torch.equal(load_dataset("digits", seed=0).val.images, a.val.images)


def test_normalised_samples_and_preprocessing_description():
    data = load_dataset("digits", seed=0, resolution=12)
    x, y = data.samples("val", 8)
    assert x.shape == (8, 1, 12, 12) and x.dtype == torch.float32 and y.shape == (8,)
    whole = data.normalise(data.train.images)
    assert abs(float(whole.mean())) < 0.1 and abs(float(whole.std()) - 1) < 0.1
    described = data.describe()
    assert described["input_shape"] == [1, 12, 12]
    assert "12x12" in described["preprocessing"] and "mean" in described["preprocessing"]


def test_stratified_split_holds_out_the_fraction_of_every_class():
    labels = np.repeat(np.arange(4), 50)
    kept, held = stratified_split(labels, 0.2, seed=3)
    assert len(held) == 40 and len(kept) == 160 and not set(kept) & set(held)
    assert np.bincount(labels[held]).tolist() == [10, 10, 10, 10]
    assert np.array_equal(held, stratified_split(labels, 0.2, seed=3)[1])


def _write_folder(root, classes, per_class, size=(20, 14)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 64, (*size, 3), dtype=np.uint8) + 60 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")


def test_image_folder_of_class_folders(tmp_path):
    _write_folder(tmp_path / "flowers", ["daisy", "rose", "tulip"], per_class=10)
    data = load_dataset(f"imagefolder:{tmp_path / 'flowers'}", seed=0, resolution=8)
    assert data.num_classes == 3 and data.classes == ("daisy", "rose", "tulip")
    assert data.input_shape == (3, 8, 8)
    assert len(data.train) + len(data.val) + len(data.test) == 30
    assert isinstance(data.train, TensorSplit), "a small folder is decoded into memory"
    assert data.train.images.shape[1:] == (3, 8, 8)
    # The classes differ by brightness: labels must follow the folders.
    brightness = [data.train.images[data.train.labels == c].float().mean() for c in range(3)]
    assert brightness[0] < brightness[1] < brightness[2]


def test_image_folder_with_train_and_test(tmp_path):
    root = tmp_path / "pets"
    _write_folder(root / "train", ["cat", "dog"], per_class=8)
    _write_folder(root / "test", ["cat", "dog"], per_class=3)
    data = load_dataset(f"imagefolder:{root}", seed=0, val_fraction=0.25, resolution=8)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 4, 6)
    assert dataset_info(f"imagefolder:{root}").num_classes == 2


def test_missing_image_folder_says_how_to_lay_it_out(tmp_path):
    with pytest.raises(DatasetError, match="one folder per class"):
        load_dataset(f"imagefolder:{tmp_path / 'nothing'}")


def test_unknown_dataset_suggests_a_name():
    with pytest.raises(DatasetError, match="did you mean 'cifar10'"):
        dataset_info("cifar-10")


@pytest.fixture
def offline(monkeypatch):
    """No network for this test, whatever the machine: every download goes to a closed port."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_offline_download_gives_one_clear_message(tmp_path, offline):
    with pytest.raises(DatasetError) as info:
        ensure_available("cifar10", data_dir=tmp_path, download=True)
    message = str(info.value)
    assert "\n" not in message
    assert "could not be downloaded" in message
    assert f"{tmp_path}/cifar-10-batches-py/data_batch_1" in message  # where to put the files
    assert "cifar-10-python.tar.gz" in message  # what to fetch


def test_search_without_the_dataset_stops_with_the_message(tmp_path, offline):
    result = CliRunner().invoke(
        app,
        ["search", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"),
         "--objective", "error", "--budget", "2", "--out", str(tmp_path / "run"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if "could not be downloaded" in line]
    assert len(lines) == 1 and "MNIST/raw/train-images-idx3-ubyte" in lines[0]
    assert not (tmp_path / "run" / "hwnas.db").exists(), "no run is started without its data"
