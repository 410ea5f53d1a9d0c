"""Peer runtimes for `make bench-peers`: Keras as a traced tf.function, and TFLite (LiteRT) with XNNPACK.

Benchmark code, not part of the edgecnn package: it imports TensorFlow freely.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np


def configure_tf_threads(threads: int) -> None:
    """Pin TensorFlow to `threads` intra-op threads; must run before TensorFlow executes anything."""
    from edgecnn.core.tfcompat import import_tensorflow

    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def load_keras(path: Any) -> Any:
    from edgecnn.core.tfcompat import import_keras

    return import_keras().models.load_model(path, compile=False)


class KerasRunner:
    """The model as one traced tf.function (no Keras predict() loop), input bound once per batch size."""

    def __init__(self, model: Any) -> None:
        from edgecnn.core.tfcompat import import_tensorflow

        self._tf = import_tensorflow()
        self._fn = self._tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self._x: Any = None

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        self._x = self._tf.constant(x)
        return lambda: self._fn(self._x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._fn(self._tf.constant(x)).numpy()


def tflite_bytes(model: Any, calibration: np.ndarray | None, int8_output: bool = False) -> bytes:
    """TFLite flatbuffer: FP32 when `calibration` is None, else every op INT8 with float input and
    float output (int8 output with `int8_output`, for cut models that end mid-network).

    `calibration` holds the prepared float32 images the ONNX INT8 export was calibrated on.
    """
    from edgecnn.core.tfcompat import import_tensorflow

    tf = import_tensorflow()
    # from_keras_model freezes the variables; from_concrete_functions keeps READ_VARIABLE ops on
    # Keras 3, which the INT8 calibrator cannot run.
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        calib = np.ascontiguousarray(calibration, dtype=np.float32)

        def representative() -> Any:
            for i in range(len(calib)):
                yield [calib[i : i + 1]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        # Fail rather than silently keep float ops; input and output stay float32 like the ONNX graphs.
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_output:
            conv.inference_output_type = tf.int8
    # The converter prints "Saved artifact at ..." and calibration banners on stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        return conv.convert()


class TfliteRunner:
    """ai_edge_litert interpreter (XNNPACK delegate, its default), resized per batch size."""

    def __init__(self, model_bytes: bytes, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interp = Interpreter(model_content=model_bytes, num_threads=threads)
        self._inp = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._batch = -1

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self._interp.resize_tensor_input(self._inp, [batch, *self._shape()], strict=False)
            self._interp.allocate_tensors()
            self._batch = batch

    def _shape(self) -> list[int]:
        return [int(d) for d in self._interp.get_input_details()[0]["shape"][1:]]

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """Set the input once; the timed call is invoke() alone, like ORT with IOBinding."""
        self._resize(x.shape[0])
        self._interp.set_tensor(self._inp, np.ascontiguousarray(x, dtype=np.float32))
        return self._interp.invoke

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.bind(x)()
        return self._interp.get_tensor(self._out).copy()


def accuracy(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, batch: int = 500
) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((predict(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum())
    return correct / len(x)
