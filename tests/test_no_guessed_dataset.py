"""Issue 23 point 2: a user's own 28x28x1, 10-class model with no train.json is not measured on MNIST.

The model: keras.io style (Rescaling first), trained a few hundred steps on real MNIST images with a
labelling of its own (class k is digit (3k+1) mod 10), as a user's letters or clothes would be.
Before the fix export assumed MNIST and the chance guard refused it, blaming the normalization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import read_metadata
from edgecnn.data import load_dataset

TRAIN_IMAGES = 6000  # 188 steps of batch 32


@pytest.fixture(scope="module")
def own_labelling_model(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    mnist = load_dataset("mnist", mnist_dir, download=False)
    inp = keras.Input((28, 28, 1), name="input")
    x = keras.layers.Rescaling(1.0 / 255.0)(inp)
    x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(x))
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    own_labels = (mnist.y_train[:TRAIN_IMAGES] * 3 + 1) % 10
    model.fit(mnist.x_train[:TRAIN_IMAGES].astype(np.float32), own_labels, epochs=1, batch_size=32, verbose=0)
    held_out = (mnist.y_test[:1000] * 3 + 1) % 10
    predicted = np.argmax(model.predict(mnist.x_test[:1000].astype(np.float32), verbose=0), axis=1)
    assert np.mean(predicted == held_out) > 0.8  # it learned its own labelling
    path = tmp_path_factory.mktemp("own") / "model.keras"  # no train.json beside it
    model.save(str(path))
    return path


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_export_measures_nothing_and_says_how(
    own_labelling_model: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    res = _cli("export", str(own_labelling_model), "-o", str(bundle), "-q", "fp16", "--no-latency", "--json")
    assert res.exit_code == 0, res.output  # no chance-guard refusal blaming the normalization
    doc = json.loads(res.stdout)
    assert doc["dataset"] is None and doc["labelled_data"] is False
    assert all(v["accuracy"] is None for v in doc["variants"].values())
    hint = [n for n in doc["notes"] if n.startswith("to measure accuracy")]
    assert hint and "--dataset NAME (mnist, " in hint[0] and "--dataset folder:DIR" in hint[0]
    assert read_metadata(bundle / "model.onnx").dataset is None
    # The rendered table carries the same line.
    shown = _cli("export", str(own_labelling_model), "-o", str(tmp_path / "b2"), "--no-latency")
    assert shown.exit_code == 0 and "to measure accuracy, pass --dataset NAME" in shown.output

    # eval does not guess either: one line naming --data.
    res = _cli("eval", str(bundle / "model.onnx"), "--output", str(tmp_path / "e"))
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pass --data" in lines[0]
    assert "folder:PATH" in lines[0] and not (tmp_path / "e").exists()

    # What the old guess did: on MNIST's labels this model is at chance, and the guard refuses it.
    with pytest.raises(EdgecnnError, match="chance level"):
        from edgecnn.exporting import ExportConfig, export

        export(
            ExportConfig(
                model_path=own_labelling_model,
                output_dir=tmp_path / "guessed",
                dataset="mnist",
                data_dir=mnist_dir,
                latency=False,
            )
        )
