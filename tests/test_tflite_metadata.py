"""edgecnn metadata in .tflite files: written with the schema's object API, read back by the pure-Python
reader, and the file still loads and runs in LiteRT (which ignores entries it does not know)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata, Normalization
from edgecnn.core.tflite_metadata import (
    METADATA_NAME,
    read_entries,
    read_tflite_metadata,
    read_tflite_props,
    write_tflite_metadata,
)

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")


def relu_model() -> bytes:
    """A real one-op TFLite model (RELU on a 1x4 float tensor), built with the schema's object API."""
    import flatbuffers

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
    tensors = []
    for name in ("x", "y"):
        t = schema.TensorT()
        t.shape, t.type, t.buffer, t.name = [1, 4], schema.TensorType.FLOAT32, 0, name
        tensors.append(t)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [1], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


META = ModelMetadata(
    input_shape=(28, 28, 1),
    class_labels=tuple(str(i) for i in range(10)),
    normalization=Normalization(scale=1 / 255, mean=(0.1307,), std=(0.3081,)),
    dataset="mnist",
    variant="int8",
    output="probabilities",
    extra={"export_accuracy": "0.9812", "export_eval_images": "10000"},
)


def run_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def test_round_trip_keeps_every_key_and_the_model_runs(tmp_path: Path) -> None:
    plain = relu_model()
    assert read_tflite_props(plain) == {} and read_tflite_metadata(plain) is None
    stamped = write_tflite_metadata(plain, META)
    path = tmp_path / "m.tflite"
    path.write_bytes(stamped)
    assert read_tflite_props(path) == META.to_props()
    assert read_tflite_metadata(path) == META
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], dtype=np.float32)
    np.testing.assert_array_equal(run_litert(stamped, x), np.maximum(x, 0))


def test_rewriting_replaces_the_entry_and_keeps_others() -> None:
    stamped = write_tflite_metadata(relu_model(), META)
    again = write_tflite_metadata(stamped, {"edgecnn.variant": "fp16", "edgecnn.input_shape": "[4]"})
    entries = read_entries(again)
    assert list(entries).count(METADATA_NAME) == 1
    assert read_tflite_props(again) == {"edgecnn.variant": "fp16", "edgecnn.input_shape": "[4]"}


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EdgecnnError, match="not a TFLite model"):
        read_tflite_props(b"\x00" * 16)
    truncated = write_tflite_metadata(relu_model(), META)[:40]
    with pytest.raises(EdgecnnError, match="not a valid TFLite model|not a TFLite model"):
        read_tflite_props(truncated)
    with pytest.raises(EdgecnnError, match="missing.tflite does not exist"):  # the one file check
        read_tflite_props(tmp_path / "missing.tflite")
    os.mkfifo(tmp_path / "pipe.tflite")
    with pytest.raises(EdgecnnError, match="FIFO"):  # checked before opening: never blocks
        read_tflite_props(tmp_path / "pipe.tflite")
    garbage = write_tflite_metadata(relu_model(), {"edgecnn.input_shape": "[1]"})
    payload = json.dumps({"edgecnn.input_shape": "[1]"}).encode()
    not_a_dict = b'["not a dict"]'.ljust(len(payload))  # same length: only the JSON changes
    broken = garbage.replace(payload, not_a_dict)
    with pytest.raises(EdgecnnError, match="metadata is malformed"):
        read_tflite_props(broken)
