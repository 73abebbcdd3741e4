"""What exporting a run's trials needs from the run: networks, input data and a device.

A trial's network is rebuilt from the run's space and seed and given its trained weights
(``weights/trial-NNNNN.safetensors``) when the run trained it; a run that read its metrics from
a table has no weights, so its networks are exported freshly initialised (said in the JSON).
Validation and calibration images come from the run's dataset, split with the run's seed: the
same images the search validated on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import hwnas.rundir as rundir
from hwnas.errors import RunError
from hwnas.types import Genotype, Trial

if TYPE_CHECKING:
    from torch import nn

    from hwnas.config import RunConfig
    from hwnas.devices import DeviceProfile
    from hwnas.spaces.base import SearchSpace
    from hwnas.training.datasets.splits import DatasetSplits

__all__ = ["BuiltModel", "RunSource", "onnx_profile"]

#: Classes of a network when the run has no dataset (what the search's profilers assumed).
DEFAULT_CLASSES = 10


@dataclass
class BuiltModel:
    """A trial's network, ready to export, with what the export file must say about it."""

    model: nn.Module
    input_shape: tuple[int, ...]  # (C, H, W)
    num_classes: int
    weights: dict[str, Any]  # JSON: where the weights came from
    preprocessing: dict[str, Any]  # JSON: how to turn an image into the input


class RunSource:
    """A run's networks, validation and calibration inputs, and where to time ONNX files."""

    def __init__(self, run_dir: Path, config: RunConfig) -> None:
        self.run_dir = run_dir
        self.config = config
        self._space: SearchSpace | None = None
        self._data: DatasetSplits | None = None
        #: Why the run's dataset could not be used (None when it could, or there is none).
        self.data_note: str | None = None

    @property
    def space(self) -> SearchSpace:
        if self._space is None:
            from hwnas.spaces import make_space

            self._space = make_space(self.config.space, self.config.space_options)
        return self._space

    @property
    def data(self) -> DatasetSplits | None:
        """The run's dataset with the run's splits, or None for a run on a table."""
        if self.config.dataset and self._data is None and self.data_note is None:
            from hwnas.errors import HwnasError
            from hwnas.training.provider import TrainingProvider

            try:
                self._data = TrainingProvider.from_config(self.config, self.space).data
            except HwnasError as exc:  # gone or offline: verify on random inputs only
                self.data_note = (
                    f"the run's dataset is not available here ({exc}); verified on random "
                    "inputs only, int8 calibrated on random inputs"
                )
        return self._data

    def weights_path(self, trial: int) -> Path:
        return self.run_dir / rundir.weights_file(trial)

    # -- networks -----------------------------------------------------------------------
    def build(self, trial: Trial) -> BuiltModel:
        """The trial's network with its trained weights when the run has them."""
        path = self.weights_path(trial.number)
        if path.is_file():
            return self._trained(trial, path)
        return self._initialised(trial)

    def _trained(self, trial: Trial, path: Path) -> BuiltModel:
        from hwnas.training.weights import load_weights

        state, meta = load_weights(path)
        try:  # metadata from a file someone may have replaced: checked before use
            genotype = (
                Genotype.from_json(meta["genotype"]) if "genotype" in meta else trial.genotype
            )
            _ = [int(v) for v in meta.get("input_shape") or []]
            _ = [int(meta[k]) for k in ("num_classes", "in_channels") if k in meta]
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RunError(
                f"the metadata of {path} is unreadable ({type(exc).__name__}: {exc}); delete the "
                "file or train the trial again"
            ) from None
        if genotype != trial.genotype:
            raise RunError(
                f"{path} holds the weights of {genotype.key()}, not of trial {trial.number} "
                f"({trial.genotype.key()}); the run directory is inconsistent"
            )
        # The weights file describes its network; the dataset is only asked when it does not
        # (so a run whose dataset is gone still exports).
        num_classes = int(
            meta["num_classes"] if "num_classes" in meta else self._dataset_shape()[1]
        )
        in_channels = int(
            meta["in_channels"] if "in_channels" in meta else self._dataset_shape()[0][0]
        )
        given = meta["input_shape"] if "input_shape" in meta else self._dataset_shape()[0]
        shape = tuple(int(v) for v in given)
        model = self._network(genotype, num_classes, in_channels)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise RunError(
                f"the weights in {path} do not fit trial {trial.number}'s network ({first})"
            ) from None
        weights = {
            "source": "trained",
            "file": str(path.relative_to(self.run_dir)),
            "epochs": meta.get("epochs"),
            "train_time": {"value": meta.get("train_time"), "unit": "s"},
            "dataset": meta.get("dataset", self.config.dataset),
        }
        keys = ("dataset", "mean", "std", "preprocessing")
        preprocessing = {k: meta[k] for k in keys if k in meta}
        if "mean" not in preprocessing and self.data is not None:
            described = self.data.describe()
            preprocessing = {k: described[k] for k in keys}
        return BuiltModel(model, shape, num_classes, weights, _named(preprocessing))

    def _initialised(self, trial: Trial) -> BuiltModel:
        shape, num_classes = self._dataset_shape()
        model = self._network(trial.genotype, num_classes, shape[0])
        if self.config.dataset:
            note = (
                "no weights file for this trial: the network is freshly initialised, "
                "its outputs are not trained predictions"
            )
        else:
            note = (
                "the run read its metrics from a table and trained nothing: the network is "
                "freshly initialised with the run's seed; train it before deploying"
            )
        weights = {"source": "initialised", "seed": self.config.seed, "note": note}
        if self.data is not None:
            described = self.data.describe()
            preprocessing = {k: described[k] for k in ("dataset", "mean", "std", "preprocessing")}
        else:
            preprocessing = {
                "dataset": None,
                "mean": None,
                "std": None,
                "preprocessing": "unknown: the run has no dataset; input is NCHW float32",
            }
        return BuiltModel(model, shape, num_classes, weights, _named(preprocessing))

    def _network(self, genotype: Genotype, num_classes: int, in_channels: int) -> nn.Module:
        """Built as the search built it: parameters initialised from the run's seed."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            model = self.space.build(genotype, num_classes=num_classes, in_channels=in_channels)
        return model.to("cpu").eval()

    def _dataset_shape(self) -> tuple[tuple[int, ...], int]:
        """``(input_shape, num_classes)`` as the search's profilers used them."""
        if self.config.dataset:
            from hwnas.training.datasets.catalog import dataset_info

            info = dataset_info(
                self.config.dataset, resolution=self.config.training.get("resolution")
            )
            shape, classes = tuple(info.input_shape), info.num_classes
        else:
            shape, classes = tuple(self.space.input_shape), DEFAULT_CLASSES
        given = self.config.profiling.get("input_shape")
        return (tuple(int(v) for v in given) if given else shape), classes

    # -- inputs -------------------------------------------------------------------------
    def validation(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to ``n`` normalised validation images and their labels (None without data)."""
        if self.data is None or n <= 0:
            return None
        images, labels = self.data.samples("val", n)
        return images.numpy().astype(np.float32), labels.numpy()

    def calibration(self, n: int, input_shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
        """``n`` inputs for int8 calibration: training images (never the validation images the
        accuracy is measured on), or random normal inputs when the run has no dataset."""
        if self.data is not None:
            images, _ = self.data.samples("train", n)
            return images.numpy().astype(np.float32), f"{len(images)} images of the train split"
        rng = np.random.default_rng(self.config.seed)
        x = rng.standard_normal((n, *input_shape), dtype=np.float32)
        return x, f"{n} random normal inputs (the run has no dataset)"

    # -- device -------------------------------------------------------------------------
    def profile(self, device: str | None = None) -> tuple[DeviceProfile, str | None]:
        """Where to time the ONNX files, and a note when it is not the run's own device."""
        return onnx_profile(device or self.config.device, given=device is not None)


def onnx_profile(device: str | None, *, given: bool = False) -> tuple[DeviceProfile, str | None]:
    """The onnxruntime profile for ``device`` and a note saying how it differs from it.

    A PyTorch profile becomes onnxruntime on the same hardware with the same protocol; a table
    device, no device, or one not available here falls back to ``ort-cpu``. A device given
    explicitly must be available (DeviceError otherwise).
    """
    from hwnas.devices import load_device
    from hwnas.errors import DeviceError
    from hwnas.hardware import require_available

    if device is None:
        return load_device("ort-cpu"), "the run has no device profile; timed on ort-cpu"
    profile = load_device(device)
    if profile.runtime == "table":
        note = f"device '{profile.name}' is a lookup table (not runnable here); timed on ort-cpu"
        return load_device("ort-cpu"), note
    note = None
    if profile.runtime == "torch":
        providers = ("CPUExecutionProvider",)
        if profile.device == "cuda":
            providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
        note = (
            f"the search timed PyTorch on '{profile.name}'; the ONNX file is timed with "
            "onnxruntime on the same device and protocol"
        )
        profile = dataclasses.replace(
            profile,
            name=f"{profile.name} (onnxruntime)",
            runtime="onnxruntime",
            providers=providers,
        )
    try:
        require_available(profile)
    except DeviceError as exc:
        if given:
            raise
        return load_device(
            "ort-cpu"
        ), f"device '{profile.name}' is not available here ({exc}); timed on ort-cpu"
    return profile, note


def _named(preprocessing: dict[str, Any]) -> dict[str, Any]:
    """The JSON ``preprocessing`` object with a readable key for the description."""
    out = dict(preprocessing)
    if "preprocessing" in out:
        out["description"] = out.pop("preprocessing")
    return out
