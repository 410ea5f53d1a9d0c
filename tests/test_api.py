"""The public Python API (`edgecnn.export` & co.): lazy, TensorFlow-free on import, keyword options
mapped onto the config dataclasses, and an in-memory keras.Model exported end to end on real MNIST."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.core.errors import EdgecnnError

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_cheap_and_tensorflow_free() -> None:
    code = (
        "import sys, edgecnn\n"
        "fns = [edgecnn.export, edgecnn.train, edgecnn.bench, edgecnn.evaluate, edgecnn.predict]\n"
        "assert all(callable(f) for f in fns)\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_option_is_refused_by_name(tmp_path: Path) -> None:
    import edgecnn

    with pytest.raises(EdgecnnError, match="quantise"):
        edgecnn.export(tmp_path / "m.keras", quantise="int8")
    with pytest.raises(EdgecnnError, match="config= or options"):
        edgecnn.evaluate(config=object(), limit=3)


def test_export_in_memory_keras_model(mnist_dir: Path, tmp_path: Path) -> None:
    """A keras.Model built and trained in this process (as in a notebook), exported with INT8 through
    `edgecnn.export`, then evaluated and predicted through the same API."""
    import edgecnn
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.data import load_dataset

    keras = import_keras()
    mnist = load_dataset("mnist", mnist_dir)
    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1.0 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D()(x))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x), name="notebook_cnn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(mnist.x_train[:8000].astype(np.float32), mnist.y_train[:8000], epochs=1, verbose=0)
    n = 2000  # the export evaluates the first n test images (eval_limit): Keras on the same ones
    keras_probs = model.predict(mnist.x_test[:n].astype(np.float32), verbose=0)
    keras_acc = float(np.mean(keras_probs.argmax(1) == mnist.y_test[:n]))

    result = edgecnn.export(
        model,
        tmp_path / "bundle",
        quantize="int8",
        dataset="mnist",
        data_dir=mnist_dir,
        eval_limit=n,
        latency=False,
    )
    assert result.variants["fp32"].accuracy == pytest.approx(keras_acc, abs=0.003)
    assert result.variants["int8"].path.exists() and result.normalization_source == "model"
    doc = result.to_dict()
    assert doc == json.loads((tmp_path / "bundle" / "export.json").read_text())
    assert not Path(doc["source_model"]).exists()  # the scratch copy is gone
    assert any("in-memory keras.Model 'notebook_cnn'" in note for note in doc["notes"])

    int8 = result.variants["int8"].path
    evaluated = edgecnn.evaluate(int8, data_dir=mnist_dir, limit=n, output_dir=tmp_path / "eval")
    assert evaluated.accuracy == pytest.approx(result.variants["int8"].accuracy, abs=1e-9)
    assert evaluated.to_dict() == json.loads((tmp_path / "eval" / "eval.json").read_text())
    predicted = edgecnn.predict(result.model_path, ROOT / "samples", output=tmp_path / "p.json")
    assert predicted.predictions and predicted.to_dict()["predictions"]
    assert predicted.to_dict() == json.loads((tmp_path / "p.json").read_text())
    benched = edgecnn.bench([int8], batch_sizes=(1,), iterations=5, output_dir=tmp_path / "b")
    assert benched.to_dict() == json.loads((tmp_path / "b" / "bench.json").read_text())
    assert benched.to_dict()["models"][0]["results"][0]["p50_ms"] > 0
