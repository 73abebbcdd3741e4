"""Real training on scikit-learn's digits: accuracy, determinism, divergence, settings."""

import math

import pytest
import torch

from hwnas.errors import ConfigError
from hwnas.spaces import make_space
from hwnas.training.batches import augment, make_batches
from hwnas.training.datasets.catalog import load_dataset
from hwnas.training.trainer import (
    TrainingDiverged,
    TrainSettings,
    evaluate_model,
    recalibrate_bn,
    resolve_device,
    train,
)

# Three searchable layers, head of 128 channels: trains 2 epochs in a few seconds on one core.
SMALL = {"stages": [[16, 1, 1], [32, 2, 1], [64, 2, 1]], "head_channels": 128}
SETTINGS = TrainSettings(epochs=2, batch_size=32)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def space():
    return make_space("mobilenet", SMALL)


def _model(space, seed=0, spec="ir_k3_e1-ir_k3_e3-ir_k5_e1"):
    torch.manual_seed(seed)
    return space.build(space.parse(spec), num_classes=10, in_channels=1)


@pytest.fixture(scope="module")
def first_run(digits, space):
    return train(_model(space), digits, SETTINGS, device="cpu", seed=0)


def test_two_epochs_on_digits_beat_fifty_percent(first_run, digits):
    assert first_run.accuracy > 50.0
    assert first_run.error == pytest.approx(100.0 - first_run.accuracy)
    assert first_run.train_time > 0 and first_run.epochs == 2
    assert first_run.steps == 2 * (len(digits.train) // 32)
    assert first_run.device == "cpu" and first_run.precision == "fp32"
    assert first_run.loader == "memory" and first_run.channels_last
    assert math.isfinite(first_run.train_loss) and first_run.images_per_second > 0


def test_same_seed_same_accuracy_and_weights(first_run, digits, space):
    again = train(_model(space), digits, SETTINGS, device="cpu", seed=0)
    assert again.accuracy == first_run.accuracy
    assert again.val_loss == first_run.val_loss
    assert all(torch.equal(again.state[k], first_run.state[k]) for k in first_run.state)


def test_a_huge_learning_rate_diverges_with_a_clear_reason(digits, space):
    with pytest.raises(TrainingDiverged, match=r"loss became nan .*lower --lr"):
        train(_model(space), digits, SETTINGS.replace(lr=1e30), device="cpu", seed=0)


def test_distillation_from_a_teacher_trains(first_run, digits, space):
    teacher = _model(space)
    teacher.load_state_dict(first_run.state)
    student = _model(space, seed=1, spec="ir_k3_e1-ir_k3_e1-ir_k3_e1")
    settings = SETTINGS.replace(epochs=0.5, optimizer="adamw")
    plain = train(_model(space, 1, "ir_k3_e1-ir_k3_e1-ir_k3_e1"), digits, settings, seed=0)
    taught = train(student, digits, settings, seed=0, teacher=teacher, distill_weight=0.7)
    assert math.isfinite(taught.train_loss) and taught.train_loss != plain.train_loss
    with pytest.raises(ConfigError):
        train(student, digits, settings, teacher=teacher, distill_weight=1.5)


def test_data_fraction_and_the_dataloader_path(digits, space):
    result = train(
        _model(space),
        digits,
        SETTINGS.replace(epochs=1, data_fraction=0.5, loader="dataloader", workers=0),
        device="cpu",
        seed=0,
    )
    assert result.loader == "dataloader"
    # Half of every class (rounded per class), in whole batches of 32.
    assert abs(result.steps - len(digits.train) * 0.5 / 32) <= 1


def test_bn_recalibration_and_test_split_evaluation(first_run, digits, space):
    model = _model(space)
    model.load_state_dict(first_run.state)
    before = evaluate_model(model, digits, "val", device="cpu")
    assert before.accuracy == pytest.approx(first_run.accuracy)
    assert recalibrate_bn(model, digits, images=500, device="cpu") == 500
    test = evaluate_model(model, digits, "test", device="cpu")
    assert test.images == len(digits.test) and test.accuracy > 40.0


def test_augment_crops_inside_the_padding_and_flips():
    images = torch.arange(2 * 3 * 5 * 5, dtype=torch.uint8).view(2, 3, 5, 5)
    g = torch.Generator().manual_seed(0)
    out = augment(images, padding=2, flip=True, generator=g)
    assert out.shape == images.shape and out.dtype == torch.uint8
    # Every output pixel is an input pixel of the same image and channel, or padding (0).
    for i in range(2):
        for c in range(3):
            allowed = set(images[i, c].flatten().tolist()) | {0}
            assert set(out[i, c].flatten().tolist()) <= allowed
    assert torch.equal(augment(images, padding=0, flip=False, generator=g), images)


def test_batches_are_seeded(digits):
    def first_labels(seed):
        batches = make_batches(
            digits, digits.train, loader="memory", batch_size=16, device=torch.device("cpu"),
            seed=seed, augment=True,
        )  # fmt: skip
        return next(iter(batches))[1]

    assert torch.equal(first_labels(5), first_labels(5))
    assert not torch.equal(first_labels(5), first_labels(6))


def test_settings_are_validated_with_clear_messages():
    with pytest.raises(ConfigError, match="epochs must be a number > 0"):
        TrainSettings(epochs=0)
    with pytest.raises(ConfigError, match="optimizer must be one of sgd, adamw"):
        TrainSettings(optimizer="adam")
    with pytest.raises(ConfigError, match="did you mean 'label_smoothing'"):
        TrainSettings.from_options({"label_smooth": 0.1})
    settings = TrainSettings.from_options({"epochs": 3, "lr": 0.05, "train_device": "cpu"})
    assert settings.epochs == 3 and settings.peak_lr == 0.05
    assert TrainSettings(optimizer="adamw").decay == 0.05
    with pytest.raises(TypeError):
        TrainSettings(3)  # keyword-only


def test_training_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.gpu
def test_cuda_training_uses_bf16_channels_last_and_device_data(digits, space):
    result = train(_model(space), digits, SETTINGS, device="cuda", seed=0)
    assert result.precision == "bf16" and result.channels_last and result.loader == "memory"
    assert result.accuracy > 50.0


@pytest.mark.gpu
def test_cuda_out_of_memory_retries_with_half_the_batch_then_fails_clearly():
    from hwnas.training.datasets.splits import DatasetSplits, TensorSplit
    from hwnas.training.trainer import OutOfMemory

    n = 16384  # FBNet's largest blocks at 224x224: no GPU holds a batch of 16,384 or 8,192
    images = torch.zeros((n, 3, 224, 224), dtype=torch.uint8)
    split = TensorSplit(images, torch.zeros(n, dtype=torch.int64))
    data = DatasetSplits(
        name="zeros", train=split, val=split, test=split, num_classes=10,
        input_shape=(3, 224, 224), mean=(0.5,) * 3, std=(0.25,) * 3,
    )  # fmt: skip
    space = make_space("mobilenet", {"preset": "fbnet"})
    model = space.build(space.parse("-".join(["ir_k5_e6"] * space.num_layers)), num_classes=10)
    with pytest.raises(OutOfMemory, match="batch size 8192 \\(after 16384\\)"):
        train(model, data, TrainSettings(epochs=1, batch_size=n), device="cuda", seed=0)


def test_threads_setting_applies_while_training_and_is_restored(digits, space):
    before = torch.get_num_threads()
    settings = SETTINGS.replace(epochs=0.2, threads=1)
    result = train(_model(space), digits, settings, device="cpu", seed=0)
    assert result.threads == 1 and result.env()["threads"] == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="threads"):
        SETTINGS.replace(threads=0)
