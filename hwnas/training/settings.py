"""Training settings (no torch here, so strategies and the CLI can read them cheaply)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

from hwnas.errors import ConfigError

__all__ = ["LOADERS", "OPTIMIZERS", "PRECISIONS", "TrainSettings"]

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "fp32", "bf16")
LOADERS = ("auto", "memory", "dataloader")
_DEFAULT_LR = {"sgd": 0.1, "adamw": 0.002}
_DEFAULT_WD = {"sgd": 5e-4, "adamw": 0.05}


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """How a candidate is trained. ``lr`` and ``weight_decay`` default by optimizer.

    ``epochs`` may be fractional (successive halving's short rungs); ``data_fraction`` of the
    training split is used (a fixed, class-balanced subset per seed); weight decay applies to
    conv and linear weights only, never to BatchNorm or biases. ``precision`` ``auto`` is bf16
    autocast on CUDA and fp32 on CPU; ``channels_last`` None means on (faster on CUDA and CPU);
    ``loader`` ``auto`` keeps in-memory data on the device when it fits, else uses a DataLoader with
    ``workers`` processes.
    """

    epochs: float = 3.0  # short proxy training; the quickstart trains 12 networks in minutes
    batch_size: int = 64
    data_fraction: float = 1.0
    optimizer: str = "sgd"
    lr: float | None = None  # peak learning rate; None: 0.1 (sgd) or 0.002 (adamw)
    momentum: float = 0.9  # SGD, Nesterov
    weight_decay: float | None = None  # None: 5e-4 (sgd) or 0.05 (adamw)
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up before the cosine decay
    grad_clip: float | None = None  # max global gradient norm
    augment: bool = True  # random crops (and flips where the dataset allows them)
    precision: str = "auto"
    channels_last: bool | None = None
    loader: str = "auto"
    workers: int = 2
    eval_batch_size: int = 500
    bn_images: int = 2048  # training images that re-estimate BatchNorm statistics at the end
    deterministic: bool = True  # cuDNN deterministic kernels on CUDA
    threads: int | None = None  # CPU threads while training; None: torch's default

    #: Keys of ``RunConfig.training`` that are not training settings (used elsewhere).
    OTHER_KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "train_device",
            "fidelity",
            "sh_eta",
            "sh_rungs",
            "sh_min_epochs",
            "resolution",
            "val_fraction",
            "distill_temperature",
        }
    )

    def __post_init__(self) -> None:
        _check_number("epochs", self.epochs, low=0.0, low_open=True)
        _check_int("batch_size", self.batch_size, low=1)
        _check_number("data_fraction", self.data_fraction, low=0.0, low_open=True, high=1.0)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            _check_number("lr", self.lr, low=0.0, low_open=True)
        _check_number("momentum", self.momentum, low=0.0, high=1.0)
        if self.weight_decay is not None:
            _check_number("weight_decay", self.weight_decay, low=0.0)
        _check_number("label_smoothing", self.label_smoothing, low=0.0, high=1.0, high_open=True)
        _check_number("warmup_epochs", self.warmup_epochs, low=0.0)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, low=0.0, low_open=True)
        _check_bool("augment", self.augment)
        _check_choice("precision", self.precision, PRECISIONS)
        if self.channels_last is not None:
            _check_bool("channels_last", self.channels_last)
        _check_choice("loader", self.loader, LOADERS)
        _check_int("workers", self.workers, low=0)
        _check_int("eval_batch_size", self.eval_batch_size, low=1)
        _check_int("bn_images", self.bn_images, low=0)
        _check_bool("deterministic", self.deterministic)
        if self.threads is not None:
            _check_int("threads", self.threads, low=1)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TrainSettings:
        """Settings from ``RunConfig.training`` (CLI flags and ``--train-option KEY=VALUE``).

        Keys listed in :attr:`OTHER_KEYS` are skipped; unknown keys raise ConfigError.
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(names) - cls.OTHER_KEYS)
        if unknown:
            import difflib

            hints = [difflib.get_close_matches(u, names, n=1) for u in unknown]
            hint = "".join(f" (did you mean '{h[0]}'?)" for h in hints if h)
            raise ConfigError(
                f"unknown training setting {', '.join(unknown)}{hint}; settings: "
                f"{', '.join(names + sorted(cls.OTHER_KEYS))}"
            )
        return cls(**{k: v for k, v in options.items() if k in names})

    @property
    def peak_lr(self) -> float:
        return _DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)

    @property
    def decay(self) -> float:
        return _DEFAULT_WD[self.optimizer] if self.weight_decay is None else self.weight_decay

    def replace(self, **changes: Any) -> TrainSettings:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "lr": self.peak_lr, "weight_decay": self.decay}


def _check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise ConfigError(f"training setting {name} must be a number {bounds}, not {value!r}")


def _check_int(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"training setting {name} must be an integer >= {low}, not {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"training setting {name} must be true or false, not {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"training setting {name} must be one of {', '.join(choices)}, not {value!r}"
        )
