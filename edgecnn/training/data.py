"""The arrays a training run uses: the dataset loaded at the model's input shape, cut to --limit, split
into train/validation, normalized as the exported model will expect (plus raw test images for plots)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.data import Dataset, load_dataset, train_val_split
from edgecnn.data.dataset import BUILTIN_SHAPES
from edgecnn.models import ModelSpec
from edgecnn.training.config import TrainConfig


@dataclass(frozen=True)
class TrainingData:
    dataset: Dataset
    x_train: np.ndarray  # normalized float images
    y_train: np.ndarray  # int64 labels
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_test_uint8: np.ndarray  # the test images as loaded, for plots

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.x_val.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.y_test.shape[0])


def _load_matching(name: str, spec: ModelSpec, config: TrainConfig) -> Dataset:
    """The dataset, refused with a one-line hint when its images or classes do not fit the model."""
    h, w, c = spec.input_shape
    if name.startswith("folder:"):
        ds = load_dataset(name, config.data_dir, image_size=(h, w), channels=c)
    else:
        known = BUILTIN_SHAPES.get(name)
        if known is not None and tuple(known) != tuple(spec.input_shape):
            _refuse_shape(spec, name, known)  # before loading: a mismatch must not start a download
        ds = load_dataset(name, config.data_dir)
        if tuple(ds.input_shape) != tuple(spec.input_shape):
            _refuse_shape(spec, name, ds.input_shape)
    if ds.num_classes != spec.num_classes:
        raise EdgecnnError(
            f"model {spec.name} has {spec.num_classes} classes but {name} has {ds.num_classes}; "
            "set num_classes in the spec to match"
        )
    return ds


def _refuse_shape(spec: ModelSpec, name: str, shape: tuple[int, ...]) -> None:
    h, w, c = spec.input_shape
    dh, dw, dc = shape
    raise EdgecnnError(
        f"model {spec.name} expects {h}x{w}x{c} images but {name} has {dh}x{dw}x{dc}; "
        f"pick a matching --dataset (the model's default is {spec.default_dataset})"
    )


def load_training_data(name: str, spec: ModelSpec, config: TrainConfig) -> TrainingData:
    ds = _load_matching(name, spec, config)
    x_all, y_all = ds.x_train, ds.y_train
    x_test, y_test = ds.x_test, ds.y_test
    if config.limit is not None:
        x_all, y_all = x_all[: config.limit], y_all[: config.limit]
        x_test, y_test = x_test[: config.limit], y_test[: config.limit]
    if len(x_test) == 0:
        # Refused before any epoch: a run that cannot be scored would fail after training, not before.
        raise EdgecnnError(
            f"{name} has no test images ({ds.source}): nothing to score the trained model on; add images "
            "(a class needs two or more to hold one out) or train/ and test/ sub-folders"
        )
    x_tr, y_tr, x_val, y_val = train_val_split(x_all, y_all, config.validation_split, config.seed)
    norm = ds.normalization
    return TrainingData(
        dataset=ds,
        x_train=norm.apply(x_tr),
        y_train=np.asarray(y_tr, dtype=np.int64),
        x_val=norm.apply(x_val),
        y_val=np.asarray(y_val, dtype=np.int64),
        x_test=norm.apply(x_test),
        y_test=np.asarray(y_test, dtype=np.int64),
        x_test_uint8=np.asarray(x_test),
    )
