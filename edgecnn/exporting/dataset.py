"""The real images an export is checked against: the dataset the model was trained on, verified to fit
the model, with its class labels and normalization settled, and the test set prepared for Keras and
for the ONNX graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata, Normalization
from edgecnn.data import Dataset
from edgecnn.exporting.config import ExportConfig
from edgecnn.exporting.keras_source import KerasSource
from edgecnn.exporting.quant_config import QuantizationConfig
from edgecnn.training.record import TrainRecord


@dataclass(frozen=True)
class ExportData:
    name: str
    x_train: np.ndarray  # uint8; calibration images are drawn from it
    x_test: np.ndarray  # uint8, cut to --eval-limit
    y_test: np.ndarray
    class_labels: tuple[str, ...]
    normalization: Normalization
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class EvalImages:
    """The same test images in the two forms the export feeds."""

    x_graph: np.ndarray  # float32 in the ONNX graph's layout
    x_nhwc: np.ndarray  # float32 NHWC, what the Keras model takes
    y: np.ndarray


def load_export_data(config: ExportConfig, source: KerasSource, has_train_record: bool) -> ExportData:
    """Load `source.dataset` and refuse it when its images or classes do not fit the model."""
    from edgecnn.data import load_dataset

    kwargs: dict[str, Any] = {}
    if source.dataset.startswith("folder:"):
        # Folder images come in any size and colour: decoded and resized to the model's input exactly
        # as training and `predict` do (edgecnn.data.images), whoever trained the model.
        h, w, c = source.input_shape
        kwargs = {"image_size": (h, w), "channels": c}
    data = load_dataset(source.dataset, config.data_dir, **kwargs)
    if tuple(data.input_shape) != source.input_shape:
        raise EdgecnnError(
            f"dataset {data.name} images are {'x'.join(map(str, data.input_shape))} but the model "
            f"input is {'x'.join(map(str, source.input_shape))} (HxWxC); pass the dataset the model was "
            "trained on (--dataset)"
        )
    labels = source.labels or tuple(data.class_labels)
    if len(labels) != source.num_classes:
        raise EdgecnnError(
            f"dataset {data.name} has {len(labels)} classes but the model has {source.num_classes} outputs; "
            "pass --dataset or --labels"
        )
    assumptions: list[str] = []
    if source.labels == () and not has_train_record:
        assumptions.append(f"class labels taken from dataset {data.name}")
    normalization = source.normalization or data.normalization
    if source.normalization is None:
        assumptions.append(f"normalization taken from dataset {data.name}: {normalization.to_dict()}")
    assumptions += _changed_split(config, data)
    x_test, y_test = np.asarray(data.x_test), np.asarray(data.y_test)
    if len(x_test) == 0:
        raise EdgecnnError(f"dataset {data.name} has no test images to check the export on ({data.source})")
    refuse_counts_beyond_data(config, data.name, len(data.x_train), len(x_test))
    if config.eval_limit is not None:
        x_test, y_test = x_test[: config.eval_limit], y_test[: config.eval_limit]
    return ExportData(
        name=data.name,
        x_train=np.asarray(data.x_train),
        x_test=x_test,
        y_test=y_test,
        class_labels=labels,
        normalization=normalization,
        assumptions=tuple(assumptions),
    )


def _changed_split(config: ExportConfig, data: Dataset) -> list[str]:
    """A note when a folder's held-out images are no longer those training held out (files were added
    or removed since): the export's accuracy then is not comparable with train.json's."""
    record = TrainRecord.beside(config.model_path)
    if record is None or record.split is None or data.split is None or record.dataset != data.name:
        return []
    trained, now = record.split.get("test_fingerprint"), data.split.get("test_fingerprint")
    if trained == now:
        return []
    return [
        f"the test images of {data.name} changed since training (fingerprint {trained} -> {now}): "
        "accuracies here are not comparable with train.json's, and some may be images it trained on"
    ]


def refuse_counts_beyond_data(config: ExportConfig, name: str, n_train: int, n_test: int) -> None:
    """A count larger than the data would be silently capped while export.json recorded the request."""
    if config.eval_limit is not None and config.eval_limit > n_test:
        raise EdgecnnError(f"--eval-limit {config.eval_limit} exceeds the {n_test} test images of {name}")
    wanted = config.quantization.calibration_samples
    # The default (500) on a smaller folder dataset calibrates on all of its images.
    if wanted > n_train and wanted != QuantizationConfig().calibration_samples:
        raise EdgecnnError(
            f"--calibration-samples {wanted} exceeds the {n_train} training images of {name}; "
            f"pass at most {n_train}"
        )


def prepare_eval_images(data: ExportData, metadata: ModelMetadata) -> EvalImages:
    """The test set normalized as at training, in the graph's layout and in Keras' NHWC."""
    from edgecnn.runtime.preprocess import prepare_batch

    return EvalImages(
        x_graph=prepare_batch(data.x_test, metadata),
        x_nhwc=data.normalization.apply(data.x_test).astype(np.float32),
        y=data.y_test,
    )
