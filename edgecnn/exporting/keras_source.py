"""The Keras side of an export: the model file (checked before TensorFlow is imported, then loaded),
its input/output shape, and what the `train.json` beside it says about the data it was trained on.

`load_source` settles the dataset, labels and normalization the export checks against, with the
assumptions it had to make and the warnings it has for the user."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.core.accuracy_bound import DEFAULT_MAX_ACCURACY_DROP_PP
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, show_path
from edgecnn.core.metadata import Normalization
from edgecnn.core.quiet import quiet_libraries
from edgecnn.core.text import one_line
from edgecnn.exporting.export_config import ExportConfig
from edgecnn.exporting.input_contract import in_model_preprocessing, output_kind, settle_normalization
from edgecnn.training.record import TrainRecord


@dataclass(frozen=True)
class KerasSource:
    """The loaded model and the facts about its training data that the export relies on."""

    model: Any  # keras.Model
    input_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int
    dataset: str | None  # None: no labelled data (parity on random images)
    labels: tuple[str, ...]  # (): take the dataset's
    normalization: Normalization | None  # train.json's; None: settled with the dataset (input_contract)
    preprocessing: str | None  # the model's own scaling layers: it takes raw pixels
    output_kind: str  # "probabilities" | "logits"
    recorded_accuracy: float | None  # train.json's test accuracy on this dataset
    model_name: str | None
    macs: int | None  # from train.json; None: counted on the ONNX graph
    image_size: tuple[int, int] | None  # load a folder dataset at the size it was trained at
    channels: int | None
    assumptions: tuple[str, ...]
    warnings: tuple[str, ...]


def check_keras_file(path: Path) -> str:
    """Refuse what is not a Keras model file before TensorFlow is even imported; returns the format."""
    if path.is_dir():
        raise EdgecnnError(f"{show_path(path)} is a directory; pass the .keras file (e.g. RUN/model.keras)")
    check_input_file(path, "model file")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF"):
        return "h5"
    if not head.startswith(b"PK"):
        kind = "an ONNX model" if path.suffix == ".onnx" else "not a Keras model"
        raise EdgecnnError(f"{path} is {kind}; export takes a Keras 3 .keras file (or a legacy .h5)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise EdgecnnError(f"{path} is a zip file but not a Keras model (no config.json inside)")
            bad = zf.testzip()
    except zipfile.BadZipFile:
        raise EdgecnnError(
            f"{path} is corrupt (truncated or damaged zip archive); re-save the model"
        ) from None
    if bad is not None:
        raise EdgecnnError(f"{path} is corrupt ({bad} fails its checksum); re-save the model")
    return "keras"


def load_keras_model(path: Path) -> Any:
    """The Keras model in `path` (TensorFlow is imported here, not before), uncompiled."""
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    try:
        with quiet_libraries():
            return keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # noqa: BLE001 - keras raises ValueError/TypeError/OSError/... for bad files
        raise EdgecnnError(f"cannot load Keras model {path}: {one_line(exc, 240)}") from None


def model_io(model: Any) -> tuple[tuple[int, int, int], int]:
    """(H, W, C) of the single image input and the number of classes of the single output."""
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise EdgecnnError(
            f"export supports models with one image input and one output; this one has "
            f"{len(inputs)} input(s) and {len(outputs)} output(s)"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise EdgecnnError(
            f"model input must be (batch, height, width, channels) with fixed sizes, not {shape}"
        )
    out = tuple(outputs[0].shape)
    if len(out) != 2 or out[1] is None:
        raise EdgecnnError(f"model output must be (batch, classes), not {out}")
    return (int(shape[1]), int(shape[2]), int(shape[3])), int(out[1])


def choose_dataset(
    config: ExportConfig, record: TrainRecord | None
) -> tuple[str | None, list[str], list[str]]:
    """The labelled dataset the export checks against (None: none), with assumptions and warnings: only
    what train.json or --dataset says, never a guess from the input shape (a user's 28x28x1 10-class
    model of clothes or letters measured on digits would be refused for a normalization it does not
    have)."""
    trained_on = record.dataset if record is not None else None
    if config.dataset:
        warnings = []
        if trained_on and trained_on != config.dataset:
            warnings.append(
                f"train.json says the model was trained on {trained_on}; using --dataset {config.dataset}"
            )
        return config.dataset, [], warnings
    return trained_on, [], []


def load_source(config: ExportConfig, record: TrainRecord | None, file_format: str) -> KerasSource:
    """Load the model checked by `check_keras_file` (which returned `file_format`) and settle the data
    facts from `config` and the train.json `record` (None when there is none)."""
    model = load_keras_model(config.model_path)
    input_shape, num_classes = model_io(model)
    dataset, assumptions, warnings = choose_dataset(config, record)
    # Labels, normalization and accuracy from train.json only describe the dataset it was trained on.
    same_dataset = record is not None and (not config.dataset or config.dataset == record.dataset)
    labels: tuple[str, ...] = ()
    if config.labels is not None:
        labels = tuple(config.labels)
    elif same_dataset and record is not None:
        labels = record.class_labels
    normalization = record.normalization if same_dataset and record is not None else None
    if same_dataset and record is not None and any("normalization" in p for p in record.problems):
        warnings.append("train.json normalization is malformed; using the dataset's")
    if labels and len(labels) != num_classes:
        raise EdgecnnError(f"{len(labels)} class labels given but the model has {num_classes} outputs")
    preprocessing = in_model_preprocessing(model)
    if config.normalization is not None:  # a contradiction is refused now, before any data is loaded
        settle_normalization(config.normalization, preprocessing, normalization, None, input_shape[2])
    if "auto" in config.quantize and config.max_accuracy_drop is None:
        assumptions.append(
            f"--quantize auto without --max-accuracy-drop: default bound {DEFAULT_MAX_ACCURACY_DROP_PP:g} pp"
        )
    if file_format == "h5":
        warnings.append("legacy HDF5 model file; Keras 3 .keras files are preferred")
    # The run trained on the dataset at this size: load it the same way (folder datasets need it).
    trained_at_this_size = record is not None and record.input_shape == input_shape
    return KerasSource(
        model=model,
        input_shape=input_shape,
        num_classes=num_classes,
        dataset=dataset,
        labels=labels,
        normalization=normalization,
        preprocessing=preprocessing,
        output_kind=output_kind(model),
        recorded_accuracy=record.test_accuracy if same_dataset and record is not None else None,
        model_name=(record.model_name if record is not None else None) or getattr(model, "name", None),
        macs=record.macs if record is not None else None,
        image_size=(input_shape[0], input_shape[1]) if trained_at_this_size else None,
        channels=input_shape[2] if trained_at_this_size else None,
        assumptions=tuple(assumptions),
        warnings=tuple(warnings),
    )
