"""The data a training run uses: the dataset at the model's input shape, cut to --limit, split into
train/validation, normalized as the exported model will expect (plus raw test images for plots).

Two loaders, recorded in train.json under dataset.loader:
- built-in datasets (MNIST & co., a few hundred MB at most) are numpy arrays in memory, as before;
- image folders are streamed from disk by a `tf.data` pipeline (`edgecnn.training.streaming`), so a
  folder larger than RAM trains; every file's header is checked before training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import Normalization
from edgecnn.data import (
    DatasetRef,
    FolderImages,
    folder_geometry,
    list_folder,
    load_dataset,
    parse_name,
    require_test_images,
    train_val_split,
)
from edgecnn.data.normalization import UNIT_SCALE_NORMALIZATION
from edgecnn.models import ModelSpec
from edgecnn.training.streaming import PREDICT_BATCH, ImageFiles, image_stream, shuffle_buffer_images
from edgecnn.training.train_config import TrainConfig

ARRAYS_LOADER = "arrays"  # the whole dataset in memory as numpy arrays
STREAM_LOADER = "tf.data"  # read from disk batch by batch, decoded images cached on disk


@dataclass(frozen=True)
class ArrayInputs:
    """Normalized float images in memory."""

    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray


@dataclass(frozen=True)
class StreamInputs:
    """Image files read batch by batch from disk."""

    train: ImageFiles  # in the seeded order the cache is written in
    val: ImageFiles
    test: ImageFiles
    seed: int


@dataclass(frozen=True)
class TrainingData:
    name: str
    source: str
    class_labels: tuple[str, ...]
    normalization: Normalization
    input_shape: tuple[int, int, int]
    y_train: np.ndarray  # int64 labels
    y_val: np.ndarray
    y_test: np.ndarray
    x_test_uint8: Any  # the test images as loaded, for plots: an array, or FolderImages read on demand
    inputs: ArrayInputs | StreamInputs
    split: dict[str, Any] | None = None  # folder datasets: the recorded train/test split

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.y_val.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.y_test.shape[0])

    def loader(self) -> dict[str, Any]:
        """How the images reached the model, as train.json records it."""
        if isinstance(self.inputs, ArrayInputs):
            return {"kind": ARRAYS_LOADER, "note": "whole dataset in memory as numpy arrays"}
        files = self.inputs.train
        return {
            "kind": STREAM_LOADER,
            "note": "streamed from disk by tf.data; decoded images cached in a scratch file on disk",
            "decoder": "edgecnn.data.images.load_image",
            "cache": "disk",
            "shuffle_buffer_images": shuffle_buffer_images(files.size, files.channels, len(files)),
        }

    def fit_arguments(self, batch_size: int, cache_dir: Path) -> dict[str, Any]:
        """Keyword arguments of `model.fit` for the training and validation images."""
        if isinstance(self.inputs, ArrayInputs):
            val = (self.inputs.x_val, self.y_val) if self.n_val > 0 else None
            return {
                "x": self.inputs.x_train,
                "y": self.y_train,
                "batch_size": batch_size,
                "shuffle": True,
                "validation_data": val,
            }
        stream = self.inputs
        train = image_stream(
            stream.train,
            self.normalization,
            batch_size,
            cache_file=cache_dir / "train",
            shuffle_seed=stream.seed,
        )
        val = None
        if self.n_val > 0:
            val = image_stream(
                stream.val, self.normalization, batch_size, cache_file=cache_dir / "val", shuffle_seed=None
            )
        # The stream shuffles itself (bounded buffer); Keras cannot shuffle a tf.data.Dataset.
        return {"x": train, "validation_data": val, "shuffle": False}

    def test_input(self) -> Any:
        """What `model.predict` scores: the normalized test array, or a stream in file order."""
        if isinstance(self.inputs, ArrayInputs):
            return self.inputs.x_test
        return image_stream(
            self.inputs.test, self.normalization, PREDICT_BATCH, cache_file=None, shuffle_seed=None
        )


def _check_classes(spec: ModelSpec, name: str, num_classes: int) -> None:
    if num_classes != spec.num_classes:
        raise EdgecnnError(
            f"model {spec.name} has {spec.num_classes} classes but {name} has {num_classes}; "
            "set num_classes in the spec to match"
        )


def _refuse_shape(spec: ModelSpec, name: str, shape: tuple[int, ...]) -> None:
    h, w, c = spec.input_shape
    dh, dw, dc = shape
    raise EdgecnnError(
        f"model {spec.name} expects {h}x{w}x{c} images but {name} has {dh}x{dw}x{dc}; "
        f"pick a matching --dataset (the model's default is {spec.default_dataset})"
    )


def _load_arrays(ref: DatasetRef, spec: ModelSpec, config: TrainConfig) -> TrainingData:
    name = ref.text
    if ref.spec is not None and tuple(ref.spec.input_shape) != tuple(spec.input_shape):
        # Before loading: a mismatch must not start a download.
        _refuse_shape(spec, name, ref.spec.input_shape)
    ds = load_dataset(name, config.data_dir)
    if tuple(ds.input_shape) != tuple(spec.input_shape):
        _refuse_shape(spec, name, ds.input_shape)
    _check_classes(spec, name, ds.num_classes)
    x_all, y_all, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
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
        name=ds.name,
        source=ds.source,
        class_labels=tuple(ds.class_labels),
        normalization=norm,
        input_shape=ds.input_shape,
        y_train=np.asarray(y_tr, dtype=np.int64),
        y_val=np.asarray(y_val, dtype=np.int64),
        y_test=np.asarray(y_test, dtype=np.int64),
        x_test_uint8=np.asarray(x_test),
        inputs=ArrayInputs(norm.apply(x_tr), norm.apply(x_val), norm.apply(x_test)),
    )


def _files(items: list[tuple[Path, int]], size: tuple[int, int], channels: int) -> ImageFiles:
    return ImageFiles(
        tuple(p for p, _ in items), np.array([y for _, y in items], dtype=np.int64), size, channels
    )


def _stream_folder(ref: DatasetRef, spec: ModelSpec, config: TrainConfig) -> TrainingData:
    """A folder dataset as file lists: every check (classes, split, each file's header, channels) runs
    here, before any training; no pixels are decoded yet."""
    assert ref.path is not None
    folder = ref.path
    split = list_folder(folder)
    _check_classes(spec, ref.text, len(split.class_labels))
    require_test_images(split)
    h, w, c = spec.input_shape
    size, channels, notes = folder_geometry(split, (h, w), c)
    # Limits take a seeded sample, not the first files: a folder lists its classes one after another.
    everything = _files(split.train, size, channels).permuted(config.seed).first(config.limit)
    test = _files(split.test, size, channels).permuted(0).first(config.limit)
    paths, labels = np.array(everything.paths, dtype=object), everything.labels
    tr_paths, y_tr, val_paths, y_val = train_val_split(paths, labels, config.validation_split, config.seed)
    train = ImageFiles(tuple(tr_paths), y_tr, size, channels).permuted(config.seed)
    val = ImageFiles(tuple(val_paths), y_val, size, channels)
    notes = split.notes() + notes
    return TrainingData(
        name=ref.text,
        source=f"{folder} ({split.how}{''.join('; ' + n for n in notes)})",
        class_labels=split.class_labels,
        normalization=UNIT_SCALE_NORMALIZATION,
        input_shape=(h, w, c),
        y_train=train.labels,
        y_val=val.labels,
        y_test=test.labels,
        x_test_uint8=FolderImages(test.paths, size, channels),
        inputs=StreamInputs(train, val, test, config.seed),
        split={**split.to_dict(), "notes": notes},
    )


def load_training_data(name: str, spec: ModelSpec, config: TrainConfig) -> TrainingData:
    ref = parse_name(name)
    if ref.kind == "folder":  # streamed from disk, file by file (other user sources load as arrays)
        return _stream_folder(ref, spec, config)
    return _load_arrays(ref, spec, config)
