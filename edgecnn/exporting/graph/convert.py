"""Keras model -> ONNX ModelProto, and nothing else: the tf2onnx `from_function` route (Keras-3-safe) and
keras' own ONNX export as the fallback. TensorFlow and tf2onnx are imported here, only when called."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import INPUT_NAME, OUTPUT_NAME
from edgecnn.core.quiet import quiet_libraries
from edgecnn.core.scratch import scratch_dir
from edgecnn.core.text import one_line
from edgecnn.exporting.graph.names import rename_io

ROUTE_TF2ONNX = "tf2onnx.from_function"
ROUTE_KERAS = "keras.export(onnx)"


def keras_call(
    model: Any, input_shape: tuple[int, int, int], output_name: str = OUTPUT_NAME
) -> tuple[Any, Any]:
    """A tf.function calling the model on (batch, *input_shape) float32 images named like the ONNX
    input, returning {output_name: scores} (the output kind: probabilities or logits); and its input
    signature."""
    from edgecnn.core.tfcompat import import_tensorflow

    tf = import_tensorflow()
    spec = (tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def serve(x: Any) -> dict[str, Any]:
        return {output_name: model(x, training=False)}

    return serve, spec


def convert_tf2onnx(
    model: Any, input_shape: tuple[int, int, int], opset: int, nchw: bool, output_name: str = OUTPUT_NAME
) -> Any:
    """The main route: tf2onnx on a tf.function around the model (works with Keras 3 models)."""
    import tf2onnx

    serve, spec = keras_call(model, input_shape, output_name)
    with quiet_libraries(), traced_without_xla():
        onnx_model, _ = tf2onnx.convert.from_function(
            serve, input_signature=spec, opset=opset, inputs_as_nchw=[INPUT_NAME] if nchw else None
        )
    bad = unsupported_ops(onnx_model)
    if bad:
        raise EdgecnnError(f"tf2onnx has no ONNX equivalent for TensorFlow op(s) {', '.join(bad[:3])}")
    with traced_without_xla():  # the same (cached) trace tf2onnx converted
        constants = captured_constants(serve.get_concrete_function())
    freeze_captured_inputs(onnx_model, constants)
    check_single_input(onnx_model)
    return onnx_model


@contextlib.contextmanager
def traced_without_xla() -> Iterator[None]:
    """Trace Keras' TensorFlow ops without their `tf.function(jit_compile=True)` wrappers.

    Keras 3 runs a grouped convolution (Conv2D(groups=...)) through an XLA-compiled inner function
    because TensorFlow's CPU kernel lacks it; TensorFlow never inlines such a function, so tf2onnx
    meets an opaque StatefulPartitionedCall. Traced without the XLA flag, the same Conv2D op is
    inlined and tf2onnx writes an ONNX Conv with `group`. Only the trace for conversion is affected:
    Keras itself (the parity gate) still runs the XLA path."""
    try:
        from keras.src.backend.tensorflow import nn as keras_tf_nn
    except ImportError:  # another Keras layout: nothing to undo
        yield
        return
    real_tf = keras_tf_nn.tf

    class _NoXla:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_tf, name)

        @staticmethod
        def function(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("jit_compile", None)
            return real_tf.function(*args, **kwargs)

    keras_tf_nn.tf = _NoXla()
    try:
        yield
    finally:
        keras_tf_nn.tf = real_tf


def captured_constants(concrete_function: Any) -> dict[str, Any]:
    """Placeholder name -> value of every constant tensor (not a variable) the traced call captured.

    Keras 3 layers keep some state as eager tensors rather than variables: Normalization's mean and
    variance (adapted or given with mean=/variance=) are `ops.cast(...)` results. A tf.function
    captures them as extra placeholders, and tf2onnx, which takes every non-resource input of the
    concrete function as a graph input, writes them as inputs the caller would have to feed. Whether
    one shows depends on TensorFlow's constant folding: in EfficientNet (Rescaling before
    Normalization) grappler merges both into one Mul/Add on new constants and the placeholders end up
    unused; after a plain input, Sub(input, mean) keeps the placeholder alive."""
    import numpy as np

    out: dict[str, Any] = {}
    for external, internal in concrete_function.graph.captures:
        dtype = getattr(external, "dtype", None)
        if dtype is None or dtype.name == "resource" or not hasattr(external, "numpy"):
            continue
        out[internal.name] = np.asarray(external.numpy())
    return out


def freeze_captured_inputs(model: Any, constants: dict[str, Any]) -> list[str]:
    """Turn graph inputs that are captured constants into initializers holding their values (unused
    ones are just dropped). Returns the names frozen."""
    from onnx import numpy_helper

    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    frozen = []
    for vi in list(graph.input):
        if vi.name not in constants:
            continue
        graph.input.remove(vi)
        if vi.name in used:
            graph.initializer.append(numpy_helper.from_array(constants[vi.name], vi.name))
        frozen.append(vi.name)
    return frozen


def check_single_input(model: Any) -> None:
    """An edgecnn model has one graph input, the image batch: anything else would be a tensor nobody
    feeds (the runtime, the parity gate and every device feed the image alone)."""
    inits = {t.name for t in model.graph.initializer}
    extra = [vi.name for vi in model.graph.input[1:] if vi.name not in inits]
    if extra:
        raise EdgecnnError(
            f"the converted graph needs {len(extra)} input(s) besides the image "
            f"({', '.join(extra[:3])}); edgecnn exports single-input image classifiers whose weights "
            "and statistics are constants"
        )


def unsupported_ops(model: Any) -> list[str]:
    """Ops tf2onnx could not map to ONNX: it leaves them in the graph as TensorFlow ops and only logs."""
    import onnx

    bad = []
    for node in model.graph.node:
        domain = node.domain or ""
        if domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type):
            bad.append(f"{node.op_type} (in {node.name or 'an unnamed node'})")
        elif domain not in ("", "ai.onnx", "ai.onnx.ml", "com.microsoft"):
            bad.append(f"{domain}.{node.op_type} (in {node.name or 'an unnamed node'})")
    return bad


def convert_keras_export(
    model: Any, input_shape: tuple[int, int, int], opset: int, nchw: bool, output_name: str = OUTPUT_NAME
) -> Any:
    """The fallback route: keras' own ONNX export, with the graph input/output renamed to the contract."""
    import onnx

    if nchw:
        raise EdgecnnError("keras' ONNX export cannot make an NCHW input")
    _, spec = keras_call(model, input_shape)
    with scratch_dir("kexport") as tmp, quiet_libraries():
        out = Path(tmp) / "model.onnx"
        model.export(str(out), format="onnx", verbose=False, opset_version=opset, input_signature=list(spec))
        onnx_model = onnx.load(str(out))
    bad = unsupported_ops(onnx_model)
    if bad:
        raise EdgecnnError(f"unsupported op(s) {', '.join(bad[:3])}")
    rename_io(onnx_model, output_name)
    check_single_input(onnx_model)
    return onnx_model


def convert(
    model: Any, input_shape: tuple[int, int, int], opset: int, nchw: bool, output_name: str = OUTPUT_NAME
) -> tuple[Any, str, list[str]]:
    """Keras model -> ONNX ModelProto whose output is named `output_name` (the output kind). Returns
    (model, route that ran, notes on routes that failed)."""
    notes: list[str] = []
    try:
        return convert_tf2onnx(model, input_shape, opset, nchw, output_name), ROUTE_TF2ONNX, notes
    except Exception as exc:  # noqa: BLE001 - converter errors are many types; reported in one line
        first = one_line(exc, 240)
        notes.append(f"{ROUTE_TF2ONNX} failed: {first}")
    try:
        return convert_keras_export(model, input_shape, opset, nchw, output_name), ROUTE_KERAS, notes
    except Exception as exc:  # noqa: BLE001
        notes.append(f"{ROUTE_KERAS} failed: {one_line(exc, 120)}")
    raise EdgecnnError(f"the converter cannot handle this model: {first}")
