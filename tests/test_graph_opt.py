"""edgecnn.graph_opt on real tf2onnx conversions and on hand-built graphs, checked with real MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecnn.core.errors import EdgecnnError
from edgecnn.exporting.graph.rewrites import REWRITES, optimize_graph
from edgecnn.exporting.quantization.qdq_rewrites import float_logits, prepare_for_int8

SHAPE_OPS = {"Shape", "Gather", "Cast", "Slice", "Concat", "Unsqueeze"}


def _session(model: onnx.ModelProto, optimized_path: Path | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = _session(model)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.fixture(scope="module")
def mnist_test(mnist_dir: Path) -> np.ndarray:
    from edgecnn.data import load_dataset

    ds = load_dataset("mnist", mnist_dir, download=False)
    return np.ascontiguousarray(ds.x_test[:512].astype(np.float32) / 255.0)


@pytest.fixture(scope="module")
def converted() -> onnx.ModelProto:
    """keras-convnet (fixed seed, untrained) through tf2onnx 1.17 opset 17, exactly as converted."""
    from edgecnn.core.tfcompat import import_keras, import_tensorflow

    tf = import_tensorflow()
    keras = import_keras()
    import tf2onnx

    keras.utils.set_random_seed(0)
    layers = keras.layers
    # Non-zero biases, as after training: tf2onnx drops an all-zero BiasAdd, which would hide the
    # MatMul + Add pair that real models have.
    bias = {"bias_initializer": keras.initializers.RandomNormal(stddev=0.05, seed=1)}
    inp = keras.Input(shape=(28, 28, 1), name="input")
    x = layers.Conv2D(32, 3, activation="relu", **bias)(inp)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu", **bias)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu", **bias)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", **bias)(x)
    out = layers.Dense(10, activation="softmax", **bias)(x)
    model = keras.Model(inp, out)
    fn = tf.function(lambda t: model(t, training=False))
    spec = (tf.TensorSpec([None, 28, 28, 1], tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    return proto


def test_tf2onnx_head_loses_transpose_and_shape_chain(
    converted: onnx.ModelProto, mnist_test: np.ndarray
) -> None:
    before = _ops(converted)
    assert "Transpose" in before and "Shape" in before  # the pattern this module exists for
    optimized, applied = optimize_graph(converted)
    after = _ops(optimized)
    assert applied == ["constant-flatten", "fold-transpose-into-matmul", "matmul-add-to-gemm"]
    assert "Transpose" not in after
    assert not SHAPE_OPS & set(after), after
    assert after.count("Gemm") == 2 and "MatMul" not in after and "Add" not in after
    assert [o.name for o in optimized.graph.output] == [o.name for o in converted.graph.output]
    ref = _run(converted, mnist_test)
    got = _run(optimized, mnist_test)
    assert np.abs(ref - got).max() <= 1e-5
    assert (ref.argmax(1) == got.argmax(1)).all()
    # The batch dimension stays dynamic: batch 1 and an odd batch give the same rows.
    for n in (1, 3):
        np.testing.assert_allclose(_run(optimized, mnist_test[:n]), ref[:n], atol=1e-5)


def test_simplified_graph_is_rewritten_too(converted: onnx.ModelProto, mnist_test: np.ndarray) -> None:
    import onnxslim

    slim = onnxslim.slim(converted)  # what export feeds in: onnxslim already folds the shape chain
    optimized, applied = optimize_graph(slim)
    assert "fold-transpose-into-matmul" in applied
    assert "Transpose" not in _ops(optimized)
    assert np.abs(_run(slim, mnist_test) - _run(optimized, mnist_test)).max() <= 1e-5


def test_prepare_for_int8_keeps_the_one_channel_stem_float(
    converted: onnx.ModelProto, mnist_test: np.ndarray, tmp_path: Path
) -> None:
    import edgecnn.exporting as qz

    fp32, _ = optimize_graph(converted)
    prepared, applied, exclude = prepare_for_int8(fp32)
    assert applied == ["pool-before-relu", "nhwc-flatten"]
    kinds = {n.name: n.op_type for n in prepared.graph.node}
    assert sorted(kinds[name] for name in exclude) == ["Conv", "MaxPool", "Relu"]
    assert np.abs(_run(fp32, mnist_test) - _run(prepared, mnist_test)).max() <= 1e-5  # exact rewrite

    src = tmp_path / "prepared.onnx"
    onnx.save(prepared, str(src))
    cfg = qz.QuantizationConfig(calibration_samples=64, nodes_to_exclude=tuple(exclude))
    int8_path = qz.quantize_int8(src, tmp_path / "int8.onnx", mnist_test[256:], "input", cfg)
    int8 = onnx.load(str(int8_path))
    agree = (_run(int8, mnist_test[:256]).argmax(1) == _run(fp32, mnist_test[:256]).argmax(1)).mean()
    assert agree >= 0.95
    # What makes it fast: ONNX Runtime's QDQ propagation cannot hoist the first QuantizeLinear above
    # the first MaxPool, so the stem runs as float NCHWc Conv + MaxPool and int8 starts at conv 2.
    _session(int8, tmp_path / "int8.opt.onnx")
    ops = _ops(onnx.load(str(tmp_path / "int8.opt.onnx")))
    first_q = ops.index("QuantizeLinear")
    assert ops.index("Conv") < ops.index("MaxPool") < first_q < ops.index("QLinearConv"), ops
    # nhwc-flatten: the only transpose left is the one into the int8 NHWC region; none before Flatten.
    assert ops.count("Transpose") == 1 and ops.index("Transpose") < ops.index("QLinearConv"), ops


def _fold_model(dynamic_shape: bool, second_use: bool = False) -> onnx.ModelProto:
    """x[N,2,3,4] (NCHW) -> Transpose to NHWC -> flatten -> MatMul(24x5) + b, like tf2onnx emits."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((24, 5)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b")
    inits = [w, b]
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1])]
    if dynamic_shape:
        inits += [
            numpy_helper.from_array(np.array([0], np.int64), "zero"),
            numpy_helper.from_array(np.array([24], np.int64), "k"),
        ]
        nodes += [
            helper.make_node("Shape", ["t"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
            helper.make_node("Concat", ["n", "k"], ["target"], axis=0),
            helper.make_node("Reshape", ["t", "target"], ["f"]),
        ]
    else:
        nodes.append(helper.make_node("Flatten", ["t"], ["f"], axis=1))
    nodes += [helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])]
    if second_use:
        outputs.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, ["N", 3, 4, 2]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])], outputs, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("dynamic_shape", [True, False])
def test_fold_permutes_weight_rows_exactly(dynamic_shape: bool) -> None:
    model = _fold_model(dynamic_shape)
    optimized, applied = optimize_graph(model)
    assert "fold-transpose-into-matmul" in applied
    assert "Transpose" not in _ops(optimized) and "Shape" not in _ops(optimized)
    x = np.random.default_rng(1).standard_normal((5, 2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(optimized, x), _run(model, x), atol=1e-5)


def test_transpose_used_elsewhere_is_not_folded() -> None:
    model = _fold_model(dynamic_shape=False, second_use=True)
    optimized, applied = optimize_graph(model, rewrites=("fold-transpose-into-matmul",))
    assert applied == [] and optimized is model


def test_reshape_that_is_not_a_flatten_is_kept() -> None:
    """Shape(x) -> [N, 12, 2]: not [batch, prod(rest)], so the dynamic Reshape stays as it is."""
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([12, 2], np.int64), "rest"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "rest"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 12, 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    optimized, applied = optimize_graph(model)
    assert applied == [] and optimized is model


def test_graph_without_the_patterns_comes_back_unchanged() -> None:
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    before = model.SerializeToString()
    optimized, applied = optimize_graph(model)
    assert applied == [] and optimized is model and model.SerializeToString() == before
    prepared, applied8, exclude = prepare_for_int8(model)
    assert prepared is model and applied8 == [] and exclude == []


def test_unknown_rewrite_is_refused() -> None:
    with pytest.raises(EdgecnnError, match="unknown graph rewrite"):
        optimize_graph(_fold_model(False), rewrites=("no-such-rewrite",))
    assert [name for name, _ in REWRITES] == [
        "constant-flatten",
        "fold-transpose-into-matmul",
        "matmul-add-to-gemm",
    ]


def test_nhwc_flatten_for_int8_is_exact() -> None:
    """prepare_for_int8 puts an NHWC transpose before Flatten and permutes the Gemm rows to match."""
    rng = np.random.default_rng(2)
    inits = [
        numpy_helper.from_array(rng.standard_normal((24, 5)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="dense"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    prepared, applied, exclude = prepare_for_int8(model)
    assert applied == ["nhwc-flatten"] and exclude == []
    assert _ops(prepared) == ["Relu", "Transpose", "Flatten", "Gemm"]
    x = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(prepared, x), _run(model, x), atol=1e-5)


def _qdq_head(extra_user: bool = False) -> onnx.ModelProto:
    """x -> QDQ -> Gemm(int8 weights) -> QDQ -> Softmax, as quantize_static writes a classifier head."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.integers(-127, 128, (16, 10)).astype(np.int8), "wq"),
        numpy_helper.from_array(np.float32(0.01), "ws"),
        numpy_helper.from_array(np.int8(0), "wz"),
        numpy_helper.from_array(rng.integers(-2000, 2000, 10).astype(np.int32), "bq"),
        numpy_helper.from_array(np.float32(0.01 / 255), "bs"),
        numpy_helper.from_array(np.int32(0), "bz"),
        numpy_helper.from_array(np.float32(1 / 255), "xs"),
        numpy_helper.from_array(np.uint8(0), "xz"),
        numpy_helper.from_array(np.float32(0.05), "ys"),
        numpy_helper.from_array(np.uint8(128), "yz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="xq"),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="xd"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], name="wd"),
        helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], name="bd"),
        helper.make_node("Gemm", ["xd", "w", "b"], ["logits"], name="dense"),
        helper.make_node("QuantizeLinear", ["logits", "ys", "yz"], ["lq"], name="lq"),
        helper.make_node("DequantizeLinear", ["lq", "ys", "yz"], ["ld"], name="ld"),
        helper.make_node("Softmax", ["ld"], ["y"], name="softmax", axis=-1),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])]
    if extra_user:
        outputs.append(helper.make_tensor_value_info("ld", TensorProto.FLOAT, ["N", 10]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])], outputs, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_float_logits_drops_the_head_qdq_and_ort_fuses_a_float_output_qgemm(tmp_path: Path) -> None:
    model = _qdq_head()
    x = np.random.default_rng(4).random((5, 16)).astype(np.float32)
    before = _run(model, x)
    assert float_logits(model) == ["dense"]
    assert _ops(model).count("QuantizeLinear") == 1 and _ops(model)[-2:] == ["Gemm", "Softmax"]
    onnx.checker.check_model(model)
    after = _run(model, x)
    # Same Gemm, minus the 8-bit rounding of the logits: the probabilities move by at most that step.
    np.testing.assert_allclose(after, before, atol=0.05)
    optimized = tmp_path / "opt.onnx"
    _session(model, optimized)
    ops = _ops(onnx.load(str(optimized)))
    assert "QGemm" in ops and "Gemm" not in ops and ops[-1] == "Softmax"
    assert ops.count("DequantizeLinear") == 0, ops  # QGemm hands Softmax float directly


def test_float_logits_leaves_a_shared_dequantize_alone() -> None:
    model = _qdq_head(extra_user=True)
    assert float_logits(model) == []
    assert _ops(model).count("QuantizeLinear") == 2
