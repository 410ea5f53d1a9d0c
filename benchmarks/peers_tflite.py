"""Peer-runtime helpers for `make bench-peers`: real MNIST, the two reference nets, TFLite and Keras runners.

This is benchmark code, not part of the edgecnn package: it imports TensorFlow freely. When the
project's own train/export steps exist, bench_peers.py uses them; the self-contained fallbacks here
(marked "interim") keep the benchmark runnable while they are being written.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path:
    """$EDGECNN_DATA_DIR, else ../shared/data/mnist beside the checkout; never downloads."""
    for cand in (os.environ.get("EDGECNN_DATA_DIR"), str(ROOT.parent / "shared" / "data" / "mnist")):
        if cand and (Path(cand) / "train-images-idx3-ubyte.gz").exists():
            return Path(cand)
    raise SystemExit("real MNIST not found: set EDGECNN_DATA_DIR or put it at ../shared/data/mnist")


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # uint8 (N, 28, 28, 1)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray


def load_mnist(data_dir: Path | None = None) -> Mnist:
    d = data_dir or mnist_dir()
    return Mnist(
        x_train=_read_idx(d / "train-images-idx3-ubyte.gz")[..., None],
        y_train=_read_idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64),
        x_test=_read_idx(d / "t10k-images-idx3-ubyte.gz")[..., None],
        y_test=_read_idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    )


def to_float(images: np.ndarray) -> np.ndarray:
    """MNIST normalization used by every model here: /255, NHWC float32."""
    return np.ascontiguousarray(images.astype(np.float32) / np.float32(255.0))


def calibration_images(data: Mnist, count: int = 200, seed: int = 0) -> np.ndarray:
    """The same uint8 calibration images for TFLite and ONNX quantization (a fixed training subset)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data.x_train), size=count, replace=False)
    return data.x_train[np.sort(idx)]


# --------------------------------------------------------------------------------------------------
# The two reference nets (interim trainer; edgecnn.train replaces it when present)
# --------------------------------------------------------------------------------------------------
RECIPES = {
    "keras-convnet": {"optimizer": "rmsprop", "lr": 1e-3, "batch": 64},
    "tf1-cnn": {"optimizer": "adam", "lr": 1e-3, "batch": 100},
}


def build_reference_model(name: str, seed: int = 0) -> Any:
    from edgecnn.tfcompat import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inp = keras.Input(shape=(28, 28, 1), name="input")
    if name == "keras-convnet":
        x = layers.Conv2D(32, 3, activation="relu")(inp)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(64, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(64, 3, activation="relu")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(64, activation="relu")(x)
    elif name == "tf1-cnn":
        x = layers.Conv2D(64, 3, padding="same", activation="relu")(inp)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Flatten()(x)
        x = layers.Dense(256, activation="relu")(x)
        x = layers.Dropout(0.3)(x)
    else:
        raise ValueError(f"unknown reference model {name!r}")
    out = layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name=name.replace("-", "_"))


def train_reference_model(name: str, data: Mnist, out_path: Path, epochs: int = 1, seed: int = 0) -> Path:
    """Interim trainer: the published recipe, real MNIST, saved as .keras."""
    from edgecnn.tfcompat import import_keras

    keras = import_keras()
    recipe = RECIPES[name]
    model = build_reference_model(name, seed)
    opt = (
        keras.optimizers.RMSprop(learning_rate=recipe["lr"])
        if recipe["optimizer"] == "rmsprop"
        else keras.optimizers.Adam(learning_rate=recipe["lr"])
    )
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        to_float(data.x_train),
        data.y_train,
        batch_size=recipe["batch"],
        epochs=epochs,
        verbose=0,
        shuffle=True,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(out_path)
    return out_path


def load_keras(path: Path) -> Any:
    from edgecnn.tfcompat import import_keras

    return import_keras().models.load_model(path, compile=False)


# --------------------------------------------------------------------------------------------------
# Keras (tf.function) and TFLite runners
# --------------------------------------------------------------------------------------------------
def keras_runner(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The model as a traced tf.function (no Keras predict() overhead), one trace per batch size."""
    from edgecnn.tfcompat import import_tensorflow

    tf = import_tensorflow()
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def run(x: np.ndarray) -> np.ndarray:
        return fn(tf.constant(x)).numpy()

    return run


def _concrete_function(model: Any) -> Any:
    from edgecnn.tfcompat import import_tensorflow

    tf = import_tensorflow()
    shape = [None, *model.inputs[0].shape[1:]]
    fn = tf.function(lambda x: model(x, training=False))
    return fn.get_concrete_function(tf.TensorSpec(shape, tf.float32, name="input"))


def tflite_bytes(model: Any, calib_uint8: np.ndarray | None) -> bytes:
    """TFLite flatbuffer: FP32 when calib is None, else full-integer INT8 ops with float in/out."""
    from edgecnn.tfcompat import import_tensorflow

    tf = import_tensorflow()
    # from_keras_model freezes the variables; from_concrete_functions keeps READ_VARIABLE ops on
    # Keras 3, which break the INT8 calibrator.
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if calib_uint8 is not None:
        calib = to_float(calib_uint8)

        def representative() -> Any:
            for i in range(len(calib)):
                yield [calib[i : i + 1]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        # Every op int8 (fail rather than silently keep float ops); input/output stay float32.
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


class TfliteRunner:
    """ai_edge_litert interpreter (XNNPACK delegate by default), resized per batch size."""

    def __init__(self, model_bytes: bytes, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interp = Interpreter(model_content=model_bytes, num_threads=threads)
        self._inp = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._batch = -1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] != self._batch:
            self._interp.resize_tensor_input(self._inp, list(x.shape), strict=False)
            self._interp.allocate_tensors()
            self._batch = x.shape[0]
        self._interp.set_tensor(self._inp, x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out)


def accuracy(
    run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, batch: int = 500
) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((run(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum())
    return correct / len(x)


def time_calls(run: Callable[[np.ndarray], Any], x: np.ndarray, calls: int) -> list[float]:
    """Per-call wall times (seconds) of `calls` back-to-back runs on the same input."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run(x)
        out.append(time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------------------------------
# Interim ONNX export (edgecnn.export replaces it when present)
# --------------------------------------------------------------------------------------------------
def keras_to_onnx(model: Any, opset: int = 17) -> Any:
    """tf2onnx from a tf.function with a named TensorSpec (from_keras fails on Keras 3), then onnxslim."""
    import tf2onnx

    from edgecnn.tfcompat import import_tensorflow

    tf = import_tensorflow()
    shape = [None, *model.inputs[0].shape[1:]]
    fn = tf.function(lambda x: model(x, training=False))
    spec = (tf.TensorSpec(shape, tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    # tf2onnx names the output after the TF tensor; the edgecnn contract calls it "probabilities".
    old = proto.graph.output[0].name
    if old != "probabilities":
        for node in proto.graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = "probabilities"
        proto.graph.output[0].name = "probabilities"
    try:
        import onnxslim

        proto = onnxslim.slim(proto)
    except Exception:  # noqa: BLE001 - slimming is an optimisation, the unslimmed graph is still valid
        pass
    return proto
