"""`export --quantize int8 --target tensorrt`: the Q/DQ graph TensorRT accepts (signed, symmetric,
zero point 0, per-channel weights, standard ops only), measured for accuracy on real MNIST like every
other variant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import read_metadata
from edgecnn.exporting import ExportConfig, export
from edgecnn.exporting.quantization.tensorrt import TRT_EXTRA_OPTIONS
from edgecnn.runtime.trt_qdq import trt_int8_problems

MAX_DROP_PP = 1.0


@pytest.fixture(scope="module")
def trt_bundle(tmp_path_factory: pytest.TempPathFactory, trained_run, mnist_dir: Path):
    out = tmp_path_factory.mktemp("trt-export") / "bundle"
    return export(
        ExportConfig(
            model_path=Path(trained_run.model_path),
            output_dir=out,
            quantize=("int8",),
            target="tensorrt",
            max_accuracy_drop=MAX_DROP_PP,
            data_dir=mnist_dir,
            eval_limit=2000,
            latency=False,
        )
    )


def test_trt_int8_follows_tensorrt_explicit_quantization(trt_bundle) -> None:
    """Read off the file, independently of runtime.trt_qdq: signed int8 zero points all 0, no int32 bias
    DequantizeLinear, float weights with a Q/DQ pair per output channel, Q/DQ only on the inputs of
    Conv/Gemm (outputs float), standard ops only."""
    path = trt_bundle.output_dir / "model.int8-trt.onnx"
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    assert all(n.domain in ("", "ai.onnx") for n in graph.node)  # no com.microsoft (QGemm) for TensorRT
    for node in qdq:
        zero_point = inits[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), f"{node.name}: zero point {zero_point}"
        if node.op_type == "DequantizeLinear":
            assert node.input[0] not in inits, f"{node.name}: DequantizeLinear on a stored constant"
    compute = [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    for node in compute:
        x_dq, w_dq = (producer[name] for name in node.input[:2])
        assert x_dq.op_type == w_dq.op_type == "DequantizeLinear", node.name
        assert inits[x_dq.input[1]].size == 1  # activation: one scale
        w_q = producer[w_dq.input[0]]
        weight = inits[w_q.input[0]]
        assert w_q.op_type == "QuantizeLinear" and weight.dtype == np.float32  # float weight + Q/DQ pair
        axis = next((a.i for a in w_dq.attribute if a.name == "axis"), 1)
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        out_axis = 0 if node.op_type == "Conv" or (node.op_type == "Gemm" and trans_b) else 1
        assert axis == out_axis and inits[w_dq.input[1]].size == weight.shape[axis] > 1, node.name
        if len(node.input) > 2:
            assert node.input[2] in inits and inits[node.input[2]].dtype == np.float32  # bias stays float
        # The output stays float: TensorRT fuses the input Q/DQ into the kernel.
        assert all(c.op_type not in ("QuantizeLinear",) for c in graph.node if node.output[0] in c.input)
    dq_consumers = {c.op_type for n in qdq if n.op_type == "DequantizeLinear"
                    for c in graph.node if n.output[0] in c.input}  # fmt: skip
    assert dq_consumers <= {"Conv", "Gemm", "MatMul"}
    assert trt_int8_problems(path) == []


def test_trt_int8_accuracy_row_and_metadata(trt_bundle) -> None:
    doc = json.loads((trt_bundle.output_dir / "export.json").read_text())
    row = doc["variants"]["int8-trt"]
    assert row["kept"] and row["within_bound"] is True
    assert row["accuracy_drop_pp"] <= MAX_DROP_PP
    assert row["settings"]["target"] == "tensorrt"
    assert row["settings"]["extra_options"] == TRT_EXTRA_OPTIONS
    assert row["settings"]["extra_options"]["QuantizeBias"] is False
    assert doc["bound_met"] is True
    meta = read_metadata(trt_bundle.output_dir / "model.int8-trt.onnx")
    assert meta is not None and meta.variant == "int8-trt" and meta.extra["target"] == "tensorrt"
    assert not (trt_bundle.output_dir / "model.int8.onnx").exists()  # the CPU INT8 is not built


@pytest.mark.parametrize(
    "quantize, message",
    [(("dynamic",), "dynamic quantization"), (("auto",), "auto"), (("fp16",), "add --quantize int8")],
)
def test_target_tensorrt_refuses_what_tensorrt_cannot_take(tmp_path: Path, quantize, message: str) -> None:
    with pytest.raises(EdgecnnError, match=message):
        ExportConfig(model_path=tmp_path / "m.keras", output_dir=tmp_path / "b", quantize=quantize,
                     target="tensorrt")  # fmt: skip
    with pytest.raises(EdgecnnError, match="unknown --target"):
        ExportConfig(model_path=tmp_path / "m.keras", output_dir=tmp_path / "b", target="gpu")
    config = ExportConfig(model_path=tmp_path / "m.keras", output_dir=tmp_path / "b", quantize=("all",),
                          target="tensorrt")  # fmt: skip
    assert config.variants == ("int8-trt", "fp16")


def test_gpu_check_finds_the_option() -> None:
    """benchmarks/gpu_check.py exports the TensorRT variant when `export --help` offers --target."""
    res = CliRunner().invoke(app, ["export", "--help"])
    assert res.exit_code == 0 and "--target" in res.stdout
