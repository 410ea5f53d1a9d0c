"""Keras classifiers built the way users build them (benchmarks/zoo_models.py), trained briefly on real
MNIST, exported end to end (issue 23): the layers that used to fail to export now reproduce Keras'
accuracy, and a graph with an input besides the image is a one-line error. The whole zoo (every layer
kind, INT8/FP16 accuracy) is `make bench-zoo` and the slow test in tests/test_bench_zoo.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import INPUT_NAME

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import zoo_models  # noqa: E402


@pytest.fixture(scope="module")
def mnist_raw(mnist_dir: Path):
    return zoo_models.raw_mnist(mnist_dir)


def export_trained(name: str, mnist_raw, mnist_dir: Path, out: Path, steps: int = 300, **options):
    """Train `name` briefly, save it like a user would, export it; (result, Keras' test accuracy)."""
    import edgecnn

    x, y, xt, yt = mnist_raw
    model = zoo_models.train_briefly(name, x, y, steps=steps)
    path = out / f"{name}.keras"
    model.save(str(path))
    keras_acc = zoo_models.keras_accuracy(model, xt, yt)
    result = edgecnn.export(
        path, out / "bundle", dataset="mnist", data_dir=mnist_dir, latency=False, **options
    )
    return result, keras_acc


def test_adapted_normalization_exports_with_keras_accuracy(
    mnist_raw, mnist_dir: Path, tmp_path: Path
) -> None:
    """Keras 3 keeps an adapted Normalization's mean/variance as captured eager tensors: tf2onnx made
    them graph inputs and the parity gate failed with "Required inputs ... are missing"."""
    import onnx

    result, keras_acc = export_trained("norm-adapted", mnist_raw, mnist_dir, tmp_path, quantize="int8")
    graph = onnx.load(str(result.model_path)).graph
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert result.normalization_source == "model" and "Normalization" in result.in_model_preprocessing
    assert keras_acc > 0.5  # really trained: accuracy means something
    assert result.variants["fp32"].accuracy == pytest.approx(keras_acc, abs=1e-4)
    assert result.variants["int8"].accuracy is not None


def test_grouped_conv_exports_with_keras_accuracy(mnist_raw, mnist_dir: Path, tmp_path: Path) -> None:
    """Conv2D(groups=...) runs through an XLA-compiled inner function in Keras 3 (TensorFlow's CPU
    kernel lacks grouped convs), which tf2onnx cannot convert unless traced without the XLA flag."""
    import onnx

    result, keras_acc = export_trained("grouped-conv", mnist_raw, mnist_dir, tmp_path, steps=150)
    groups = [
        a.i
        for n in onnx.load(str(result.model_path)).graph.node
        if n.op_type == "Conv"
        for a in n.attribute
        if a.name == "group"
    ]
    assert 4 in groups
    assert keras_acc > 0.5
    assert result.variants["fp32"].accuracy == pytest.approx(keras_acc, abs=1e-4)


def test_graph_with_extra_input_is_one_line_error() -> None:
    """A graph input besides the image that is not a captured constant: refused, naming it."""
    import onnx
    from onnx import TensorProto, helper

    from edgecnn.exporting.graph.convert import check_single_input, freeze_captured_inputs

    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, 4])
    mean = helper.make_tensor_value_info("norm/Sub/y:0", TensorProto.FLOAT, [1, 4])
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 4])
    node = helper.make_node("Sub", [INPUT_NAME, "norm/Sub/y:0"], ["probabilities"])
    model = helper.make_model(helper.make_graph([node], "g", [x, mean], [out]))
    with pytest.raises(EdgecnnError, match=r"1 input\(s\) besides the image \(norm/Sub/y:0\)"):
        check_single_input(model)
    value = np.arange(4, dtype=np.float32).reshape(1, 4)
    assert freeze_captured_inputs(model, {"norm/Sub/y:0": value}) == ["norm/Sub/y:0"]
    check_single_input(model)
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
