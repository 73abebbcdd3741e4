"""Proxy training: a few epochs of SGD or AdamW with a cosine schedule, on CPU or CUDA.

:func:`train` trains a model on a :class:`~hwnas.training.datasets.splits.DatasetSplits` and reports
validation accuracy and training time. It is deterministic for a seed on a CPU (same model,
data, settings and thread count give bit-identical weights); on CUDA it runs bf16 autocast with
channels_last and keeps the data on the GPU when it fits. A non-finite loss raises
:class:`TrainingDiverged`; CUDA running out of memory retries once with half the batch.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hwnas.errors import ConfigError, DeviceError
from hwnas.profilers.base import pinned_threads
from hwnas.training.batches import eval_batches, make_batches
from hwnas.training.datasets.splits import DatasetSplits, Split, TensorSplit, stratified_split
from hwnas.training.settings import TrainSettings

__all__ = [
    "Evaluation",
    "OutOfMemory",
    "TrainResult",
    "TrainSettings",
    "TrainingDiverged",
    "TrainingFailed",
    "evaluate_model",
    "recalibrate_bn",
    "resolve_device",
    "train",
]


class TrainingFailed(RuntimeError):
    """A candidate could not be trained (the runner records the trial as FAILED)."""


class TrainingDiverged(TrainingFailed):
    """The loss became NaN or infinite."""


class OutOfMemory(TrainingFailed):
    """CUDA ran out of memory, also with half the batch."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; DeviceError if absent."""
    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--train-device {name}: CUDA is not available here; use --train-device cpu or auto"
            )
        device = torch.device(text)
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"--train-device {name}: there are {torch.cuda.device_count()} CUDA devices"
            )
        return torch.device("cuda", index)
    raise ConfigError(f"unknown training device '{name}'; choose auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class Evaluation:
    """Top-1 accuracy and error (%) and mean cross-entropy on ``images`` images."""

    accuracy: float
    error: float
    loss: float
    images: int


@dataclass(frozen=True)
class TrainResult:
    """Validation accuracy of the trained model, the training's cost, and the final weights.

    ``train_time`` (s) is the wall time of the optimisation steps (data, forward, backward,
    update), synchronised on CUDA; ``eval_time`` (s) that of the validation pass.
    """

    accuracy: float
    error: float
    val_loss: float
    train_loss: float
    train_time: float
    eval_time: float
    epochs: float
    steps: int
    images: int  # training images processed (steps x batch size)
    batch_size: int
    device: str
    precision: str
    channels_last: bool
    loader: str
    oom_retries: int
    state: dict[str, torch.Tensor] = field(repr=False)
    threads: int = 0  # torch's intra-op threads while it trained

    @property
    def images_per_second(self) -> float:
        return self.images / self.train_time if self.train_time > 0 else math.nan

    def env(self) -> dict[str, Any]:
        """The environment to store with the measurements."""
        return {
            "train_device": self.device,
            "epochs": self.epochs,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "loader": self.loader,
            "oom_retries": self.oom_retries,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "images_per_second": self.images_per_second,
            "torch": torch.__version__,
            "threads": self.threads,
        }


def train(
    model: nn.Module,
    data: DatasetSplits,
    settings: TrainSettings,
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    init_state: Mapping[str, torch.Tensor] | None = None,
    teacher: nn.Module | None = None,
    distill_weight: float = 0.5,
    distill_temperature: float = 4.0,
) -> TrainResult:
    """Train ``model`` on ``data.train`` for ``settings.epochs``; evaluate on ``data.val``.

    ``init_state`` is loaded first (strictly). With a ``teacher``, the loss is
    ``(1 - w) * CE + w * T^2 * KL(teacher || student)`` at temperature ``T``
    (Hinton et al. 2015), ``w = distill_weight``. The model stays on ``device`` afterwards.
    """
    if not 0.0 <= distill_weight <= 1.0:
        raise ConfigError(f"distill_weight must be in [0, 1], not {distill_weight}")
    if not distill_temperature > 0:
        raise ConfigError(f"distill temperature must be positive, not {distill_temperature}")
    dev = resolve_device(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    initial = None
    if dev.type == "cuda":  # kept to restart cleanly after running out of memory
        initial = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    with pinned_threads(settings.threads):  # fewer can be faster on a busy machine
        distill = (distill_weight, distill_temperature)
        return _train_with_retry(model, data, settings, dev, seed, initial, teacher, distill)


def _train_with_retry(
    model: nn.Module,
    data: DatasetSplits,
    settings: TrainSettings,
    dev: torch.device,
    seed: int,
    initial: dict[str, torch.Tensor] | None,
    teacher: nn.Module | None,
    distill: tuple[float, float],
) -> TrainResult:
    batch_size = settings.batch_size
    for retries in range(2):
        try:
            return _fit(
                model,
                data,
                settings.replace(batch_size=batch_size),
                dev,
                seed,
                teacher=teacher,
                distill=distill,
                oom_retries=retries,
            )
        except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError since torch 2.5
            if dev.type != "cuda" or retries == 1 or batch_size < 2:
                raise OutOfMemory(
                    f"CUDA ran out of memory training with batch size {batch_size}"
                    + (f" (after {settings.batch_size})" if retries else "")
                    + "; lower --batch-size or use a smaller space"
                ) from None
        # Outside the except block the traceback (and the tensors its frames hold) is gone.
        gc.collect()
        torch.cuda.empty_cache()
        assert initial is not None
        model.load_state_dict(initial)
        batch_size //= 2
    raise AssertionError("unreachable")


def _fit(
    model: nn.Module,
    data: DatasetSplits,
    settings: TrainSettings,
    dev: torch.device,
    seed: int,
    *,
    teacher: nn.Module | None,
    distill: tuple[float, float],
    oom_retries: int,
) -> TrainResult:
    bf16 = _use_bf16(settings.precision, dev)
    # channels_last by default: 1.5-2.5x faster training on CUDA and on CPUs with oneDNN too
    # (mobilenet, nb201, macro at 16x16, measured; see docs/benchmarks.md).
    channels_last = True if settings.channels_last is None else settings.channels_last
    cuda_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices), _determinism(settings.deterministic, dev):
        torch.manual_seed(seed)  # dropout and anything else drawing from the global generator
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model.to(device=dev, memory_format=memory_format)
        if teacher is not None:
            teacher.to(device=dev, memory_format=memory_format).eval()
        batches = make_batches(
            data,
            _fraction(data.train, settings.data_fraction, seed),
            loader=settings.loader,
            batch_size=settings.batch_size,
            device=dev,
            seed=seed,
            augment=settings.augment,
            channels_last=channels_last,
            workers=settings.workers,
        )
        steps = max(1, round(settings.epochs * batches.steps_per_epoch))
        warmup = round(settings.warmup_epochs * batches.steps_per_epoch)
        optimizer = _optimizer(model, settings)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(steps, warmup))
        autocast = _autocast(bf16, dev)
        # A CPU reads the loss for free; on CUDA reading it synchronises, so check in strides.
        check_every = 1 if dev.type == "cpu" else 25
        model.train()
        running = torch.zeros((), device=dev)
        window, train_loss = 0, math.nan
        started = time.perf_counter()
        for step, (x, y) in zip(range(steps), batches):
            with autocast:
                logits = model(x)
                loss = _loss(logits, y, x, settings, teacher, distill)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step()
            running += loss.detach()
            window += 1
            if window == check_every or step == steps - 1:
                train_loss = float(running) / window
                if not math.isfinite(train_loss):
                    raise TrainingDiverged(
                        f"training loss became {train_loss} at step {step + 1} of {steps} "
                        f"(peak lr {settings.peak_lr:g}); lower --lr or set "
                        "--train-option grad_clip=5"
                    )
                running.zero_()
                window = 0
        recalibrate_bn(
            model,
            data,
            images=settings.bn_images,
            device=dev,
            batch_size=settings.eval_batch_size,
            bf16=bf16,
            channels_last=channels_last,
        )
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        train_time = time.perf_counter() - started
        loader_kind, used_batch = batches.kind, batches.batch_size
        del batches, optimizer, schedule
        started = time.perf_counter()
        result = evaluate_model(
            model,
            data,
            "val",
            device=dev,
            batch_size=settings.eval_batch_size,
            bf16=bf16,
            channels_last=channels_last,
        )
        eval_time = time.perf_counter() - started
    if not math.isfinite(result.loss):
        raise TrainingDiverged(f"validation loss is {result.loss} after training")
    return TrainResult(
        accuracy=result.accuracy,
        error=result.error,
        val_loss=result.loss,
        train_loss=train_loss,
        train_time=train_time,
        eval_time=eval_time,
        epochs=float(settings.epochs),
        steps=steps,
        images=steps * used_batch,
        batch_size=used_batch,
        device=str(dev),
        precision="bf16" if bf16 else "fp32",
        channels_last=channels_last,
        loader=loader_kind,
        oom_retries=oom_retries,
        state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        threads=torch.get_num_threads(),
    )


def _loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    images: torch.Tensor,
    settings: TrainSettings,
    teacher: nn.Module | None,
    distill: tuple[float, float],
) -> torch.Tensor:
    logits = logits.float()  # the loss in fp32 also under bf16 autocast
    loss = F.cross_entropy(logits, labels, label_smoothing=settings.label_smoothing)
    if teacher is None:
        return loss
    weight, temperature = distill
    with torch.no_grad():
        target = teacher(images).float()
    kl = F.kl_div(
        F.log_softmax(logits / temperature, dim=1),
        F.log_softmax(target / temperature, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    return (1.0 - weight) * loss + weight * temperature**2 * kl


def evaluate_model(
    model: nn.Module,
    data: DatasetSplits,
    split: str = "val",
    *,
    device: str | torch.device = "auto",
    batch_size: int = 500,
    bf16: bool = False,
    channels_last: bool = False,
) -> Evaluation:
    """Top-1 accuracy of ``model`` on every image of ``split`` (``val``; ``test`` for reports)."""
    dev = resolve_device(device)
    part = data.split(split)
    was_training = model.training
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    autocast = _autocast(bf16, dev)
    try:
        with torch.inference_mode(), autocast:
            for x, y in eval_batches(
                data, part, batch_size=batch_size, device=dev, channels_last=channels_last
            ):
                logits = model(x).float()
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(dim=1) == y).sum())
                total += int(y.numel())
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError(f"the {split} split of {data.name} is empty")
    accuracy = 100.0 * correct / total
    return Evaluation(accuracy, 100.0 - accuracy, loss_sum / total, total)


def recalibrate_bn(
    model: nn.Module,
    data: DatasetSplits,
    *,
    images: int = 2048,
    device: str | torch.device = "auto",
    batch_size: int = 500,
    bf16: bool = False,
    channels_last: bool = False,
) -> int:
    """Re-estimate BatchNorm running statistics from the first ``images`` training images.

    After a few hundred steps the running averages (momentum 0.1) still remember the large
    activations of the first steps, and validation accuracy can sit at chance level while the
    training loss is low; exact averages over un-augmented training images fix that. Supernet
    subnets need the same. Returns the number of images used (0: no BatchNorm, or none asked).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or images <= 0:
        return 0
    dev = resolve_device(device)
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    was_training = model.training
    model.train()  # BatchNorm uses and records batch statistics; dropout is irrelevant here
    seen = 0
    part = data.train
    try:
        with torch.no_grad(), _autocast(bf16, dev):
            for x, _ in eval_batches(
                data,
                part,
                batch_size=min(batch_size, images),
                device=dev,
                channels_last=channels_last,
            ):
                if seen >= images or x.shape[0] < 2:
                    break
                model(x)
                seen += int(x.shape[0])
    finally:
        for m, (momentum, _) in zip(norms, saved):
            m.momentum = momentum
        model.train(was_training)
    return seen


def _fraction(split: Split, fraction: float, seed: int) -> Split:
    if fraction >= 1.0:
        return split
    if isinstance(split, TensorSplit):
        _, part = stratified_split(split.labels.numpy(), fraction, seed)
        return split.subset(part)
    from torch.utils.data import Subset

    n = max(1, round(len(split) * fraction))
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    return Subset(split, order[:n].tolist())


def _optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm scales and biases (1-d tensors): decaying them only hurts.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": settings.decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=settings.peak_lr, momentum=settings.momentum, nesterov=settings.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=settings.peak_lr)


def _cosine(steps: int, warmup: int) -> Any:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _use_bf16(precision: str, dev: torch.device) -> bool:
    if precision == "fp32" or dev.type != "cuda":
        if precision == "bf16" and dev.type != "cuda":
            raise ConfigError("precision bf16 needs CUDA; use precision auto or fp32 on a CPU")
        return False
    supported = torch.cuda.is_bf16_supported()
    if precision == "bf16" and not supported:
        raise DeviceError(f"{torch.cuda.get_device_name(dev)} does not support bf16")
    return supported


def _autocast(bf16: bool, dev: torch.device) -> contextlib.AbstractContextManager[Any]:
    if bf16:
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _determinism(deterministic: bool, dev: torch.device) -> Iterator[None]:
    if dev.type != "cuda":
        yield
        return
    backend = torch.backends.cudnn
    saved = (backend.deterministic, backend.benchmark)
    backend.deterministic, backend.benchmark = deterministic, not deterministic
    try:
        yield
    finally:
        backend.deterministic, backend.benchmark = saved
