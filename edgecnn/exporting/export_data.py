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
from edgecnn.exporting.export_config import ExportConfig
from edgecnn.exporting.input_contract import settle_normalization
from edgecnn.exporting.keras_source import KerasSource
from edgecnn.exporting.quantization.quant_config import QuantizationConfig
from edgecnn.exporting.unlabelled import (
    CALIBRATION_HINT,
    MEASURE_ACCURACY_HINT,
    RANDOM_IMAGES,
    load_calibration_images,
    random_images,
)
from edgecnn.training.record import TrainRecord


@dataclass(frozen=True)
class ExportData:
    name: str | None  # None: no labelled data
    x_train: np.ndarray | None  # uint8 calibration pool; None: no calibration images
    x_test: np.ndarray  # uint8, cut to --eval-limit; random or calibration images without labels
    y_test: np.ndarray | None  # None: no labelled data, agreement only
    class_labels: tuple[str, ...]
    normalization: Normalization
    normalization_source: str  # "--normalization" | "train.json" | "model" | "dataset"
    parity_inputs: str  # what the parity gate ran on, in words
    assumptions: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def labelled(self) -> bool:
        return self.y_test is not None


@dataclass(frozen=True)
class EvalImages:
    """The same test images in the two forms the export feeds."""

    x_graph: np.ndarray  # float32 in the ONNX graph's layout
    x_nhwc: np.ndarray  # float32 NHWC, what the Keras model takes
    y: np.ndarray | None


def load_export_data(config: ExportConfig, source: KerasSource, has_train_record: bool) -> ExportData:
    """Load `source.dataset` and refuse it when its images or classes do not fit the model; without a
    dataset, the export's images are --calibration-data's or random ones (no accuracy then)."""
    if source.dataset is None:
        return unlabelled_export_data(config, source)
    from edgecnn.data import load_dataset, parse_name

    kwargs: dict[str, Any] = {}
    if parse_name(source.dataset).any_image_size:
        # Folder images come in any size and colour: decoded and resized to the model's input exactly
        # as training and `predict` do (edgecnn.data.images), whoever trained the model.
        h, w, c = source.input_shape
        kwargs = {"image_size": (h, w), "channels": c}
    data = load_dataset(source.dataset, config.data_dir, **kwargs)
    if tuple(data.input_shape) != source.input_shape:
        raise EdgecnnError(
            f"dataset {data.name} images are {'x'.join(map(str, data.input_shape))} but the model "
            f"input is {'x'.join(map(str, source.input_shape))} (HxWxC); pass the dataset the model was "
            "trained on (--dataset), or leave --dataset out to export without labelled data"
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
    settled = settle_normalization(
        config.normalization, source.preprocessing, source.normalization, (data.name, data.normalization),
        source.input_shape[2],
    )  # fmt: skip
    if settled.assumption:
        assumptions.append(settled.assumption)
    assumptions += _changed_split(config, data)
    x_test, y_test = np.asarray(data.x_test), np.asarray(data.y_test)
    if len(x_test) == 0:
        raise EdgecnnError(f"dataset {data.name} has no test images to check the export on ({data.source})")
    refuse_counts_beyond_data(config, data.name, len(data.x_train), len(x_test))
    if config.eval_limit is not None:
        x_test, y_test = x_test[: config.eval_limit], y_test[: config.eval_limit]
    x_train, notes = np.asarray(data.x_train), []
    if config.calibration_data is not None and "int8" in config.variants:
        x_train, where = calibration_images(config, source.input_shape)
        notes.append(f"INT8 calibrated on {where}")
    return ExportData(
        name=data.name,
        x_train=x_train,
        x_test=x_test,
        y_test=y_test,
        class_labels=labels,
        normalization=settled.normalization,
        normalization_source=settled.source,
        parity_inputs=f"real {data.name} test images",
        assumptions=tuple(assumptions),
        notes=tuple(notes),
    )


def calibration_images(config: ExportConfig, input_shape: tuple[int, int, int]) -> tuple[np.ndarray, str]:
    assert config.calibration_data is not None
    q = config.quantization
    return load_calibration_images(
        config.calibration_data, input_shape, config.data_dir, q.calibration_samples, q.seed
    )


def unlabelled_export_data(config: ExportConfig, source: KerasSource) -> ExportData:
    """No dataset fits the model: FP32/FP16 are checked on images without labels; INT8 only with
    --calibration-data; an accuracy bound cannot be checked at all."""
    if config.effective_max_drop is not None:
        raise EdgecnnError(
            "no labelled data for this model, so an accuracy bound (--max-accuracy-drop, --quantize auto) "
            "cannot be checked; pass --dataset with the data the model was trained on"
        )
    if "int8" in config.variants and config.calibration_data is None:
        raise EdgecnnError(f"no labelled data for this model; {CALIBRATION_HINT}")
    settled = settle_normalization(
        config.normalization, source.preprocessing, source.normalization, None, source.input_shape[2]
    )
    labels = source.labels or tuple(str(i) for i in range(source.num_classes))
    assumptions = [] if source.labels else [f"no class labels given: named 0..{source.num_classes - 1}"]
    notes = ["no labelled data: accuracy not measured; parity and variant agreement on unlabelled images",
             MEASURE_ACCURACY_HINT]  # fmt: skip
    x_train = None
    if config.calibration_data is not None:
        x_train, where = calibration_images(config, source.input_shape)
        x_test, parity_inputs = x_train[:RANDOM_IMAGES], f"{where} (calibration data, no labels)"
        notes.append(f"INT8 calibrated on {where}")
    else:
        x_test, parity_inputs = random_images(source.input_shape), f"{RANDOM_IMAGES} random images"
    return ExportData(
        name=None,
        x_train=x_train,
        x_test=x_test,
        y_test=None,
        class_labels=labels,
        normalization=settled.normalization,
        normalization_source=settled.source,
        parity_inputs=parity_inputs,
        assumptions=tuple(assumptions),
        notes=tuple(notes),
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
