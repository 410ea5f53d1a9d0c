"""The model's input/output contract (issue 10): in-model preprocessing means raw pixels, explicit
--normalization is checked against the model, logits models say so in their metadata, the loud guard
refuses a near-chance FP32 export, and a model without labelled data still exports FP32/FP16.

Models are small functional Keras models trained briefly on real MNIST (or built from keras.applications
with weights=None); nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import LOGITS_NAME, OUTPUT_NAME, read_metadata
from edgecnn.data import load_dataset
from edgecnn.exporting import ExportConfig, export
from edgecnn.exporting.input_contract import (
    NORMALIZATION_PRESETS,
    in_model_preprocessing,
    output_kind,
    parse_normalization,
    settle_normalization,
)


def _cli(*args: str):
    from typer.testing import CliRunner

    from edgecnn.cli import app

    return CliRunner().invoke(app, ["export", *args])


def _one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


TRAIN_IMAGES = 12000


@pytest.fixture(scope="module")
def keras():
    from edgecnn.core.tfcompat import import_keras

    return import_keras()


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path):
    return load_dataset("mnist", mnist_dir)


def small_cnn(keras, *, rescale: bool, softmax: bool, shape=(28, 28, 1)):
    inp = keras.Input(shape, name="input")
    x = keras.layers.Rescaling(1.0 / 255.0)(inp) if rescale else inp
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax" if softmax else None)(x))


def fit_briefly(keras, model, x: np.ndarray, y: np.ndarray, *, from_logits: bool) -> None:
    keras.utils.set_random_seed(0)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)


def keras_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=500, verbose=0), axis=1) == y))


@pytest.fixture(scope="module")
def rescaling_model(keras, mnist, tmp_path_factory: pytest.TempPathFactory):
    """A keras.io-style model taking raw 0-255 pixels (Rescaling first), trained elsewhere: no
    train.json beside it. Returns (path, the accuracy Keras itself reports on the MNIST test set)."""
    model = small_cnn(keras, rescale=True, softmax=True)
    x = mnist.x_train[:TRAIN_IMAGES].astype(np.float32)  # raw pixels: the model scales them itself
    fit_briefly(keras, model, x, mnist.y_train[:TRAIN_IMAGES], from_logits=False)
    path = tmp_path_factory.mktemp("rescaling") / "model.keras"
    model.save(str(path))
    return path, keras_accuracy(model, mnist.x_test.astype(np.float32), mnist.y_test)


def test_parse_normalization_presets_and_explicit() -> None:
    assert parse_normalization("unit") == NORMALIZATION_PRESETS["unit"]
    explicit = parse_normalization("scale=0.00392156862745098,mean=0.485/0.456/0.406,std=0.229/0.224/0.225")
    assert explicit.mean == NORMALIZATION_PRESETS["imagenet"].mean
    assert parse_normalization("scale=1,mean=127.5,std=127.5").apply(np.array([[[[255]]]], np.uint8)) == 1.0
    for bad in ("unitt", "scale=x", "mean=1,mean=2", "caffe"):
        with pytest.raises(EdgecnnError):
            parse_normalization(bad)


def test_contract_detected_on_keras_applications(keras) -> None:
    """What keras.applications' own source says: EfficientNet, MobileNetV3 and ConvNeXt scale inside the
    model; MobileNetV2 and DenseNet expect the caller's preprocess_input."""
    apps = keras.applications
    built = {
        "EfficientNetB0": apps.EfficientNetB0(weights=None, input_shape=(32, 32, 3)),
        "MobileNetV3Small": apps.MobileNetV3Small(weights=None, input_shape=(32, 32, 3)),
        "MobileNetV2": apps.MobileNetV2(weights=None, input_shape=(32, 32, 3), classifier_activation=None),
    }
    assert in_model_preprocessing(built["EfficientNetB0"]).startswith("Rescaling(scale=0.00392157")
    assert "Normalization" in in_model_preprocessing(built["EfficientNetB0"])
    assert "offset=-1" in in_model_preprocessing(built["MobileNetV3Small"])
    assert in_model_preprocessing(built["MobileNetV2"]) is None
    assert output_kind(built["EfficientNetB0"]) == OUTPUT_NAME
    assert output_kind(built["MobileNetV2"]) == LOGITS_NAME


def test_settle_refuses_contradictions() -> None:
    unit = NORMALIZATION_PRESETS["unit"]
    with pytest.raises(EdgecnnError, match="scale them twice"):
        settle_normalization("unit", "Rescaling(scale=0.00392157)", None, ("mnist", unit), 1)
    with pytest.raises(EdgecnnError, match="train.json"):
        settle_normalization("raw", None, unit, ("mnist", unit), 1)
    with pytest.raises(EdgecnnError, match="--normalization"):
        settle_normalization(None, None, None, None, 3)
    settled = settle_normalization(None, "Rescaling(scale=0.00392157)", None, ("mnist", unit), 1)
    assert settled.normalization.is_raw and settled.source == "model" and settled.assumption is None


def test_rescaling_model_exports_with_keras_accuracy(
    rescaling_model, mnist_dir: Path, tmp_path: Path
) -> None:
    """Issue 10's 10%-accuracy bug: no normalization option, no train.json, and the export matches Keras."""
    path, keras_acc = rescaling_model
    result = export(
        ExportConfig(
            model_path=path, output_dir=tmp_path / "b", dataset="mnist", data_dir=mnist_dir, latency=False
        )
    )
    assert result.variants["fp32"].accuracy == pytest.approx(keras_acc, abs=0.003)
    meta = read_metadata(result.model_path)
    assert meta.normalization.is_raw and meta.in_model_preprocessing.startswith("Rescaling")
    assert meta.output == OUTPUT_NAME
    assert result.normalization_source == "model"


def test_rescaling_model_refuses_unit_normalization(rescaling_model, mnist_dir: Path, tmp_path: Path) -> None:
    path, _ = rescaling_model
    out = tmp_path / "b"
    line = _one_error_line(
        _cli(str(path), "-o", str(out), "--data-dir", str(mnist_dir), "--normalization", "unit")
    )
    assert "Rescaling" in line and "twice" in line
    assert not out.exists()


def test_guard_refuses_near_chance_fp32(keras, mnist, mnist_dir: Path, tmp_path: Path) -> None:
    """A model trained with its classes in another order than the dataset's: parity passes (Keras and
    ONNX agree) but FP32 accuracy on the labelled test set is below chance, and the guard names the
    likely causes instead of shipping it; --no-accuracy-guard exports it anyway."""
    model = small_cnn(keras, rescale=False, softmax=True)
    x = mnist.normalization.apply(mnist.x_train[:TRAIN_IMAGES])
    shifted_labels = (mnist.y_train[:TRAIN_IMAGES] + 1) % 10
    fit_briefly(keras, model, x, shifted_labels, from_logits=False)
    path = tmp_path / "shifted.keras"
    model.save(str(path))
    out = tmp_path / "b"
    line = _one_error_line(
        _cli(str(path), "-o", str(out), "--dataset", "mnist", "--data-dir", str(mnist_dir), "--no-latency")
    )
    assert "chance level" in line and "--normalization" in line and "class order" in line
    assert not out.exists()
    result = export(
        ExportConfig(
            model_path=path,
            output_dir=out,
            dataset="mnist",
            data_dir=mnist_dir,
            accuracy_guard=False,
            latency=False,
        )
    )
    assert result.variants["fp32"].accuracy <= 0.15


def test_guard_far_below_train_json() -> None:
    from edgecnn.exporting.guard import MAX_DROP_VS_TRAINING_PP, check_fp32_accuracy

    recorded = 0.95
    check_fp32_accuracy(recorded - MAX_DROP_VS_TRAINING_PP / 200, 10, "mnist", "unit", recorded)
    with pytest.raises(EdgecnnError, match="train.json"):
        check_fp32_accuracy(recorded - MAX_DROP_VS_TRAINING_PP / 50, 10, "mnist", "unit", recorded)


def test_logits_model_round_trips(keras, mnist, mnist_dir: Path, tmp_path: Path) -> None:
    """A model without softmax: `output: logits` in the metadata and graph, and eval/predict turn its
    outputs into the probabilities Keras' logits give."""
    from edgecnn.evaluation import EvalConfig, evaluate
    from edgecnn.prediction import PredictConfig, predict

    model = small_cnn(keras, rescale=False, softmax=False)
    x = mnist.normalization.apply(mnist.x_train[:TRAIN_IMAGES])
    fit_briefly(keras, model, x, mnist.y_train[:TRAIN_IMAGES], from_logits=True)
    path = tmp_path / "logits.keras"
    model.save(str(path))
    result = export(
        ExportConfig(
            model_path=path,
            output_dir=tmp_path / "b",
            dataset="mnist",
            data_dir=mnist_dir,
            quantize=("int8",),
            latency=False,
        )
    )
    for variant in ("fp32", "int8"):
        meta = read_metadata(result.variants[variant].path)
        assert meta.output == LOGITS_NAME
    import onnx

    assert onnx.load(str(result.model_path)).graph.output[0].name == LOGITS_NAME
    keras_acc = keras_accuracy(model, mnist.normalization.apply(mnist.x_test), mnist.y_test)
    evaluated = evaluate(EvalConfig(model=result.model_path, data_dir=mnist_dir, output_dir=tmp_path / "e"))
    assert evaluated.accuracy == pytest.approx(keras_acc, abs=0.003)
    samples = sorted(Path(__file__).resolve().parents[1].joinpath("samples").glob("*.png"))[:4]
    predicted = predict(
        PredictConfig(model=result.model_path, inputs=tuple(samples), top_k=10, output=tmp_path / "p.json")
    )
    from edgecnn.data.images import fit_image

    for p in predicted.predictions:
        pixels = fit_image(p.path, (28, 28, 1)).pixels[None]
        logits = model.predict(mnist.normalization.apply(pixels), verbose=0)[0].astype(np.float64)
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        got = {c.index: c.probability for c in p.top}
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)
        assert max(abs(got[i] - expected[i]) for i in range(10)) < 1e-4
    assert not any("logits?" in a for a in predicted.assumptions)  # the metadata said so: nothing guessed


def test_export_without_labelled_data(keras, tmp_path: Path) -> None:
    """An RGB model with no dataset on disk: FP32 + FP16 with parity on random images and no accuracy;
    INT8 is refused with the calibration hint, then built from a folder of unlabelled images of another
    size (resized to the model input)."""
    from PIL import Image

    model = small_cnn(keras, rescale=True, softmax=True, shape=(32, 32, 3))
    path = tmp_path / "rgb.keras"
    model.save(str(path))
    result = export(
        ExportConfig(model_path=path, output_dir=tmp_path / "b", quantize=("fp16",), latency=False)
    )
    assert result.dataset is None and set(result.variants) == {"fp32", "fp16"}
    assert all(v.accuracy is None for v in result.variants.values())
    assert "random images" in result.parity_inputs and all(p.passed for p in result.parity)
    doc = json.loads(result.json_path.read_text())
    assert doc["labelled_data"] is False and doc["variants"]["fp16"]["accuracy"] is None
    with pytest.raises(EdgecnnError, match="--calibration-data"):
        export(ExportConfig(model_path=path, output_dir=tmp_path / "c", quantize=("int8",), latency=False))
    assert not (tmp_path / "c").exists()
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    result = export(
        ExportConfig(
            model_path=path,
            output_dir=tmp_path / "c",
            quantize=("int8",),
            calibration_data=str(folder),
            latency=False,
        )
    )
    assert result.variants["int8"].accuracy is None and result.variants["int8"].top1_agreement > 0.5
    assert read_metadata(result.variants["int8"].path).normalization.is_raw
