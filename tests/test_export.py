"""export: a really trained keras-convnet to ONNX, gated against Keras and measured on real MNIST."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.metadata import INPUT_NAME, OUTPUT_NAME, read_metadata
from edgecnn.data import load_dataset
from edgecnn.runtime.inference import predict_probabilities
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.sessions import open_cpu_session

runner = CliRunner()


def _cli(*args: str):
    return runner.invoke(app, ["export", *args])


def _one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path):
    return load_dataset("mnist", mnist_dir)


# -------------------------------------------------------------------------------------- the bundle


def test_bundle_files_and_graph_contract(exported_bundle) -> None:
    out = Path(exported_bundle.output_dir)
    # .edgecnn-output: the ownership marker that lets --force replace this bundle (and nothing else).
    assert sorted(p.name for p in out.iterdir()) == [
        ".edgecnn-output",
        "export.json",
        "model.fp16.onnx",
        "model.int8.onnx",
        "model.onnx",
    ]
    for name in ("model.onnx", "model.int8.onnx", "model.fp16.onnx"):
        model = onnx.load(str(out / name))
        onnx.checker.check_model(model)
        (inp,) = model.graph.input
        (outp,) = model.graph.output
        assert inp.name == INPUT_NAME and outp.name == OUTPUT_NAME
        dims = inp.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [28, 28, 1]
        # fp16 keeps float32 at the boundary so callers feed the same tensors.
        assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert outp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert exported_bundle.route == "tf2onnx.from_function"
    counts = exported_bundle.node_counts
    assert counts["final"] <= counts["simplified"] <= counts["converted"]
    assert counts["final"] < counts["converted"]


def test_fp32_parity_gate(exported_bundle) -> None:
    parity = {p.batch_size: p for p in exported_bundle.parity}
    assert 1 in parity and max(parity) >= 32
    for p in parity.values():
        assert p.passed and p.max_abs_diff <= 1e-4 and p.top1_agreement == 1.0
        assert p.n >= 16


def test_fp32_matches_keras_independently(exported_bundle, mnist) -> None:
    """Re-check the gate from outside: Keras vs the bundle's model.onnx on 500 real test images."""
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    model = keras.models.load_model(str(exported_bundle.source_model), compile=False)
    x = mnist.normalization.apply(mnist.x_test[:500]).astype(np.float32)
    ref = np.asarray(model(x, training=False))
    session, provider = open_cpu_session(Path(exported_bundle.output_dir) / "model.onnx")
    assert provider == "CPUExecutionProvider"
    got = predict_probabilities(session, x, batch_size=100)
    assert float(np.max(np.abs(ref - got))) <= 1e-4
    assert np.array_equal(ref.argmax(1), got.argmax(1))
    one = predict_probabilities(session, x[:8], batch_size=1)
    assert float(np.max(np.abs(ref[:8] - one))) <= 1e-4


def test_int8_accuracy_and_size(exported_bundle, mnist) -> None:
    v = exported_bundle.variants
    fp32, int8 = v["fp32"], v["int8"]
    assert fp32.accuracy > 0.95  # really trained
    assert int8.accuracy_drop_pp <= 0.3
    assert int8.size_bytes <= 0.30 * fp32.size_bytes
    assert int8.top1_agreement >= 0.99
    # The reported accuracy is what the file really scores on the whole real test set.
    path = Path(exported_bundle.output_dir) / "model.int8.onnx"
    session, _ = open_cpu_session(path)
    meta = read_metadata(path)
    probs = predict_probabilities(session, prepare_batch(mnist.x_test, meta))
    assert len(probs) == 10000
    assert float(np.mean(probs.argmax(1) == mnist.y_test)) == pytest.approx(int8.accuracy, abs=1e-9)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_fp16_accuracy(exported_bundle) -> None:
    fp16 = exported_bundle.variants["fp16"]
    assert fp16.accuracy_drop_pp <= 0.1
    assert fp16.size_bytes <= 0.6 * exported_bundle.variants["fp32"].size_bytes
    assert any("GPU variant" in n for n in fp16.notes)


def test_latency_side_by_side(exported_bundle) -> None:
    for r in exported_bundle.variants.values():
        assert set(r.latency_ms) == {1, 64}
        assert all(ms > 0 for ms in r.latency_ms.values())
        assert r.fp32_latency_ms == exported_bundle.variants["fp32"].latency_ms
        assert r.slower_than_fp32 == (r.name != "fp32" and any(s < 1.0 for s in r.speedup.values()))


def test_metadata_round_trips(exported_bundle, mnist) -> None:
    out = Path(exported_bundle.output_dir)
    source = Path(exported_bundle.source_model)
    import hashlib

    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    for name, variant in (("model.onnx", "fp32"), ("model.int8.onnx", "int8"), ("model.fp16.onnx", "fp16")):
        meta = read_metadata(out / name)
        assert meta is not None
        assert meta.variant == variant
        assert meta.input_shape == (28, 28, 1) and meta.layout == "NHWC"
        assert meta.class_labels == tuple(mnist.class_labels)
        assert meta.normalization == mnist.normalization
        assert meta.dataset == "mnist"
        assert meta.source_sha256 == sha
        assert meta.export_route == "tf2onnx.from_function"
        assert meta.macs_per_image and meta.macs_per_image > 1_000_000
        assert meta.edgecnn_version
        # The ORT session sees the same metadata (what predict/bench read).
        session, _ = open_cpu_session(out / name)
        assert read_metadata(session) == meta


def test_export_json_document(exported_bundle) -> None:
    doc = json.loads((Path(exported_bundle.output_dir) / "export.json").read_text())
    assert doc["route"] == "tf2onnx.from_function" and doc["failure"] is None
    assert doc["environment"]["execution_provider"] == "CPUExecutionProvider"
    assert "hardware" in doc["environment"] and "versions" in doc["environment"]
    assert doc["config"]["quantize"] == ["int8", "fp16"]
    for name in ("fp32", "int8", "fp16"):
        v = doc["variants"][name]
        for key in ("accuracy", "accuracy_drop_pp", "size_bytes", "max_abs_diff", "path"):
            assert v[key] is not None, (name, key)
        assert Path(v["path"]).is_file()


# ------------------------------------------------------------------------------------ CLI behaviour


def test_cli_json_nchw_and_force(exported_bundle, mnist_dir: Path, tmp_path: Path) -> None:
    """A real CLI run: --nchw graph, --json on stdout only, then refusal without --force."""
    out = tmp_path / "nchw"
    args = [str(exported_bundle.source_model), "-o", str(out), "--nchw", "--data-dir", str(mnist_dir)]
    result = _cli(*args, "--no-latency", "--eval-limit", "1000", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["layout"] == "NCHW" and doc["variants"]["fp32"]["accuracy"] > 0.95
    assert all(p["passed"] for p in doc["parity"])
    model = onnx.load(str(out / "model.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    assert read_metadata(out / "model.onnx").layout == "NCHW"

    before = (out / "export.json").read_bytes()
    line = _one_error_line(_cli(*args))
    assert "already exists" in line and "--force" in line
    assert (out / "export.json").read_bytes() == before


def test_cli_bad_inputs(exported_bundle, tmp_path: Path) -> None:
    out = str(tmp_path / "b")
    assert "does not exist" in _one_error_line(_cli(str(tmp_path / "nope.keras"), "-o", out))

    corrupt = tmp_path / "corrupt.keras"
    data = Path(exported_bundle.source_model).read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    assert "corrupt" in _one_error_line(_cli(str(corrupt), "-o", out))

    onnx_file = tmp_path / "model.onnx"
    shutil.copy(Path(exported_bundle.output_dir) / "model.onnx", onnx_file)
    assert "ONNX model" in _one_error_line(_cli(str(onnx_file), "-o", out))
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    assert "not a Keras model" in _one_error_line(_cli(str(text), "-o", out))

    model = str(exported_bundle.source_model)
    assert "opset" in _one_error_line(_cli(model, "-o", out, "--opset", "99"))
    assert "--quantize" in _one_error_line(_cli(model, "-o", out, "--quantize", "int4"))
    assert "calibration method" in _one_error_line(
        _cli(model, "-o", out, "--quantize", "int8", "--calibration-method", "magic")
    )
    assert not Path(out).exists()


def test_input_shape_mismatch_and_unconvertible_layer(tmp_path: Path, mnist_dir: Path) -> None:
    """Calibration/test data that does not fit the model, and a layer tf2onnx cannot convert."""
    from edgecnn.core.tfcompat import import_keras, import_tensorflow

    keras = import_keras()
    tf = import_tensorflow()
    inp = keras.Input((32, 32, 3), name="input")
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
    rgb = tmp_path / "rgb.keras"
    keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x)).save(str(rgb))
    out = tmp_path / "o"
    line = _one_error_line(
        _cli(str(rgb), "-o", str(out), "-q", "int8", "--dataset", "mnist", "--data-dir", str(mnist_dir))
    )
    assert "28x28x1 but the model input is 32x32x3" in line
    assert not out.exists()
    # Without --dataset no dataset fits: INT8 then needs calibration images (FP32 alone would export).
    line = _one_error_line(_cli(str(rgb), "-o", str(out), "--quantize", "int8", "--data-dir", str(mnist_dir)))
    assert "--calibration-data" in line
    assert not out.exists()

    @keras.saving.register_keras_serializable(package="edgecnn_tests")
    class Bessel(keras.layers.Layer):
        def call(self, x):
            return tf.math.bessel_i1e(x)

    inp = keras.Input((28, 28, 1), name="input")
    x = keras.layers.Flatten()(Bessel()(inp))
    odd = tmp_path / "odd.keras"
    keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x)).save(str(odd))
    line = _one_error_line(_cli(str(odd), "-o", str(out), "--dataset", "mnist", "--data-dir", str(mnist_dir)))
    assert "converter cannot handle" in line and "BesselI1e" in line
    assert not out.exists()


def test_keras_export_fallback_route(exported_bundle, mnist) -> None:
    """The fallback route (keras' own ONNX export) gives the same contract names and numbers."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.exporting.graph.convert import convert_keras_export
    from edgecnn.exporting.graph.names import name_batch_dim

    keras = import_keras()
    model = keras.models.load_model(str(exported_bundle.source_model), compile=False)
    converted = convert_keras_export(model, (28, 28, 1), 17, False)
    name_batch_dim(converted)
    assert converted.graph.input[0].name == INPUT_NAME
    assert converted.graph.output[0].name == OUTPUT_NAME
    import onnxruntime as ort

    session = ort.InferenceSession(converted.SerializeToString(), providers=["CPUExecutionProvider"])
    dims = converted.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"  # batch stays dynamic
    x = mnist.normalization.apply(mnist.x_test[:64]).astype(np.float32)
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    assert float(np.max(np.abs(got - np.asarray(model(x, training=False))))) <= 1e-4


def test_int8_rewrites_that_drift_are_refused(
    exported_bundle, mnist_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """A float rewrite for INT8 that changes the outputs is not quantized; the plain graph is."""
    import edgecnn.exporting.quantization.qdq_rewrites as graph_opt
    from edgecnn.exporting import ExportConfig, export

    real = graph_opt.prepare_for_int8

    def drifting(model):
        prepared, applied, keep_float = real(model)
        bias = next(t for t in prepared.graph.initializer if t.name.endswith("bias"))
        arr = onnx.numpy_helper.to_array(bias) + np.float32(0.5)
        bias.CopyFrom(onnx.numpy_helper.from_array(arr, bias.name))
        return prepared, applied, keep_float

    monkeypatch.setattr(graph_opt, "prepare_for_int8", drifting)
    result = export(
        ExportConfig(
            model_path=Path(exported_bundle.source_model),
            output_dir=tmp_path / "bundle",
            quantize=("int8",),
            data_dir=mnist_dir,
            eval_limit=500,
            latency=False,
        )
    )
    doc = json.loads((tmp_path / "bundle" / "export.json").read_text())
    assert not any(r.startswith("int8:") for r in doc["graph_rewrites"])
    assert any("changed the float outputs" in w for w in doc["warnings"])
    assert result.variants  # INT8 still built, from the plain FP32 graph
