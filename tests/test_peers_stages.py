"""The stage-by-stage cuts `make bench-peers` times (benchmarks/peers_stages.py), without TensorFlow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stages():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("peers_stages", ROOT / "benchmarks" / "peers_stages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _layer(kind: str, name: str):
    return type(kind, (), {"name": name})()


def test_stage_layers_end_at_pools_dense_and_unpooled_convs(stages) -> None:
    kinds = [("InputLayer", "input"), ("Conv2D", "conv1"), ("MaxPooling2D", "pool1"), ("Conv2D", "conv2"),
             ("MaxPooling2D", "pool2"), ("Conv2D", "conv3"), ("Flatten", "flatten1"), ("Dense", "dense1"),
             ("Dropout", "dropout1"), ("Dense", "probabilities")]  # fmt: skip
    model = type("M", (), {"layers": [_layer(k, n) for k, n in kinds]})()
    # The output layer is the whole model, timed as the "output" stage.
    assert stages.stage_layers(model) == ["pool1", "pool2", "conv3", "dense1"]


def _scoped_model(path: Path) -> Path:
    """tf2onnx-style names: a quantized Relu tensor of layer "conv1" and a float Gemm of "dense1"."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.float32(0.05), "s"),
        numpy_helper.from_array(np.uint8(0), "z"),
        numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "unused"),
    ]
    nodes = [
        helper.make_node("MatMul", ["input", "w1"], ["conv1_1/MatMul"]),
        helper.make_node("Relu", ["conv1_1/MatMul"], ["conv1_1/Relu"]),
        helper.make_node(
            "QuantizeLinear", ["conv1_1/Relu", "s", "z"], ["conv1_1/Relu_QuantizeLinear_Output"]
        ),
        helper.make_node(
            "DequantizeLinear",
            ["conv1_1/Relu_QuantizeLinear_Output", "s", "z"],
            ["conv1_1/Relu_DequantizeLinear_Output"],
        ),  # fmt: skip
        helper.make_node("MatMul", ["conv1_1/Relu_DequantizeLinear_Output", "w2"], ["dense1_1/MatMul"]),
        helper.make_node("Softmax", ["dense1_1/MatMul"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_cut_onnx_keeps_exactly_what_the_layer_needs(stages, tmp_path: Path) -> None:
    full = _scoped_model(tmp_path / "full.onnx")
    graph = onnx.load(str(full)).graph
    tensor = stages.onnx_tensor_ending(graph, "conv1")
    assert tensor == "conv1_1/Relu_QuantizeLinear_Output"  # a quantized layer ends on its int8 tensor
    assert stages.onnx_tensor_ending(graph, "dense1") == "dense1_1/MatMul"
    with pytest.raises(ValueError, match="pool9"):
        stages.onnx_tensor_ending(graph, "pool9")

    cut = onnx.load(str(stages.cut_onnx(full, tensor, tmp_path / "cut.onnx")))
    assert [n.op_type for n in cut.graph.node] == ["MatMul", "Relu", "QuantizeLinear"]
    assert cut.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert sorted(t.name for t in cut.graph.initializer) == ["s", "w1", "z"]
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    (got,) = ort.InferenceSession(str(tmp_path / "cut.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )
    w1 = numpy_helper.to_array(next(t for t in graph.initializer if t.name == "w1"))
    want = np.clip(np.round(np.maximum(x @ w1, 0) / 0.05), 0, 255)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


def test_stage_rows_are_differences_of_cumulative_times(stages) -> None:
    cumulative = {"pool1": {"tflite": 0.010, "onnx": 0.004}, "pool2": {"tflite": 0.015, "onnx": 0.014},
                  "output": {"tflite": 0.020, "onnx": 0.016}}  # fmt: skip
    rows = stages.stage_rows(cumulative, ["pool1", "pool2", "output"])
    assert [r["stage"] for r in rows] == ["pool1", "pool2", "output"]
    assert rows[0]["tflite_ms"] == pytest.approx(0.010) and rows[0]["onnx_over_tflite"] == pytest.approx(0.4)
    assert rows[1]["onnx_ms"] == pytest.approx(0.010) and rows[1]["onnx_over_tflite"] == pytest.approx(2.0)
    assert rows[2]["onnx_cumulative_ms"] == pytest.approx(0.016)
    assert sum(r["onnx_ms"] for r in rows) == pytest.approx(0.016)


def test_cut_onnx_can_end_channels_last(stages, tmp_path: Path) -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["pool1_1/MaxPool2d"]),
         helper.make_node("Neg", ["pool1_1/MaxPool2d"], ["out"])],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 4, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, 4, 5])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    stages.cut_onnx(tmp_path / "m.onnx", "pool1_1/MaxPool2d", tmp_path / "c.onnx", to_channels_last=True)
    sess = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"input": x})[0], x.transpose(0, 2, 3, 1))
