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
from edgecnn.runtime.graph_stats import count_qdq_nodes

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


def test_trt_int8_is_signed_symmetric_per_channel_qdq(trt_bundle) -> None:
    path = trt_bundle.output_dir / "model.int8-trt.onnx"
    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and count_qdq_nodes(path) == len(qdq)
    assert all(n.domain in ("", "ai.onnx") for n in graph.node)  # no com.microsoft (QGemm) for TensorRT
    weights = 0
    for node in qdq:
        zero_point = inits[node.input[2]]
        assert not zero_point.any(), f"{node.name}: zero point {zero_point} (TensorRT needs 0)"
        quantized = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if quantized is not None and quantized.dtype == np.int32:
            continue  # a bias: int32 with scale = input scale x weight scale, as TensorRT expects
        assert zero_point.dtype == np.int8, f"{node.name}: {zero_point.dtype} (TensorRT needs int8)"
        if quantized is not None and quantized.ndim >= 2:  # a Conv/Gemm weight
            weights += 1
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            scale = inits[node.input[1]]
            assert scale.size == quantized.shape[axis] > 1, f"{node.name}: not per-channel"
    # Every Conv/Gemm weight is quantized per channel.
    assert weights == sum(n.op_type in ("Conv", "Gemm", "MatMul") for n in graph.node)


def test_trt_int8_accuracy_row_and_metadata(trt_bundle) -> None:
    doc = json.loads((trt_bundle.output_dir / "export.json").read_text())
    row = doc["variants"]["int8-trt"]
    assert row["kept"] and row["within_bound"] is True
    assert row["accuracy_drop_pp"] <= MAX_DROP_PP
    assert row["settings"]["target"] == "tensorrt"
    assert row["settings"]["extra_options"] == {"ActivationSymmetric": True, "WeightSymmetric": True}
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
