"""`edgecnn optimize`: ORT's CPU graph saved with edgecnn's layout fusion, and the target lock."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_bench import tiny_cnn
from typer.testing import CliRunner

from edgecnn import runtime
from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.optimize import OptimizeConfig, fuse_reorder_quantize_transpose, optimize
from edgecnn.runtime.target import TARGET_KEY, check_target, current_cpu_target, target_mismatch


@pytest.fixture(scope="module")
def optimized(exported_bundle, mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    int8 = Path(exported_bundle.variants["int8"].path)
    out = tmp_path_factory.mktemp("opt") / "model.int8.cpu.onnx"
    return int8, optimize(OptimizeConfig(model=int8, output=out, data_dir=mnist_dir))


def test_optimize_fuses_the_stem_layout_change_and_keeps_outputs(optimized, mnist_dir: Path) -> None:
    int8, result = optimized
    # keras-convnet's INT8 recipe: float first block (NCHWc) -> first int8 conv (NHWC): one fusion.
    assert result.rewrites == {"reorder_quantize_transpose_to_channels_last": 1}
    model = onnx.load(str(result.output))
    reorders = [n for n in model.graph.node if n.op_type == "ReorderOutput"]
    assert [
        helper.get_attribute_value(a) for n in reorders for a in n.attribute if a.name == "channels_last"
    ] == [1]
    assert "Transpose" not in result.optimized_ops and "QLinearConv" in result.optimized_ops
    assert result.parity == {
        "inputs": "real:mnist",
        "images": 256,
        "max_abs_diff": 0.0,
        "top1_agreement": 1.0,
    }
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props[TARGET_KEY]) == current_cpu_target()
    assert props["edgecnn.variant"] == "int8"  # every other metadata field survives
    report = json.loads(result.report.read_text())
    assert report["kind"] == "edgecnn.optimize" and report["output"] == str(result.output)
    # Runs through the normal runtime path, with the same accuracy as the portable model.
    from edgecnn.evaluation import EvalConfig, evaluate

    a = evaluate(
        EvalConfig(
            model=int8, data_dir=mnist_dir, limit=2000, plot=False, output_dir=result.output.parent / "e1"
        )
    )
    b = evaluate(
        EvalConfig(
            model=result.output,
            data_dir=mnist_dir,
            limit=2000,
            plot=False,
            output_dir=result.output.parent / "e2",
        )
    )
    assert a.accuracy == b.accuracy


def test_optimized_model_is_refused_elsewhere(optimized, tmp_path: Path) -> None:
    _, result = optimized
    model = onnx.load(str(result.output))
    for p in model.metadata_props:
        if p.key == TARGET_KEY:
            t = json.loads(p.value)
            t["isa"] = [f for f in t["isa"] if not f.startswith("avx512")]
            t["onnxruntime"] = "0.0.1"
            p.value = json.dumps(t)
    other = tmp_path / "other.cpu.onnx"
    onnx.save(model, str(other))
    with pytest.raises(EdgecnnError, match=r"optimized for another machine \(onnxruntime 0.0.1 there"):
        runtime.open_session(other)
    props = {TARGET_KEY: json.dumps(current_cpu_target())}
    with pytest.raises(EdgecnnError, match="cannot run on device 'cuda'"):
        check_target(other, props, "cuda")
    check_target(other, props, "cpu")  # the same machine passes
    check_target(other, {}, "cuda")  # a portable model passes anywhere


def test_target_mismatch_names_the_difference() -> None:
    here = {"onnxruntime": "1.31.1", "machine": "x86_64", "isa": ["avx2", "avx512f", "fma"]}
    assert target_mismatch(here, here) is None
    there = {"onnxruntime": "1.31.1", "machine": "x86_64", "isa": ["avx2", "fma"]}
    assert target_mismatch(there, here) == "CPU features only there: -; only here: avx512f"


def test_optimize_refusals(optimized, tmp_path: Path) -> None:
    int8, result = optimized
    with pytest.raises(EdgecnnError, match="exists"):
        optimize(OptimizeConfig(model=int8, output=result.output))
    with pytest.raises(EdgecnnError, match="already optimized"):
        optimize(OptimizeConfig(model=result.output, output=tmp_path / "again.onnx"))
    with pytest.raises(EdgecnnError, match="must differ"):
        optimize(OptimizeConfig(model=int8, output=int8, force=True))
    with pytest.raises(EdgecnnError, match="--check-images"):
        OptimizeConfig(model=int8, check_images=0)


def test_cli_optimize_tiny_model_random_check(tmp_path: Path) -> None:
    # No metadata dataset: parity on random inputs; a float graph has nothing to fuse.
    model = tiny_cnn(tmp_path / "tiny.onnx", metadata=False)
    res = CliRunner().invoke(app, ["optimize", str(model), "--check-images", "70", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["output"] == str(tmp_path / "tiny.cpu.onnx") and doc["report"] == str(
        tmp_path / "tiny.cpu.json"
    )
    assert doc["parity"]["inputs"] == "random" and doc["parity"]["images"] == 70
    assert doc["rewrites"]["reorder_quantize_transpose_to_channels_last"] == 0
    again = CliRunner().invoke(app, ["optimize", str(model)])
    assert again.exit_code == 1
    assert again.output.strip().splitlines() == [
        f"error: output {tmp_path / 'tiny.cpu.onnx'} already exists; pass --force to overwrite it"
    ]


def _reorder_graph(scale: np.ndarray) -> onnx.ModelProto:
    nodes = [
        helper.make_node("ReorderOutput", ["x"], ["r"], domain="com.microsoft.nchwc", channels=16),
        helper.make_node("QuantizeLinear", ["r", "s", "z"], ["q"]),
        helper.make_node("Transpose", ["q"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Identity", ["t"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4, 4, 16])],
        [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(np.zeros(scale.shape, np.uint8), "z")],
        value_info=[helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 16, 4, 4])],
    )  # fmt: skip
    return helper.make_model(graph)


def test_fusion_rewires_consumers_and_skips_per_channel_scales() -> None:
    model = _reorder_graph(np.array(0.1, np.float32))
    assert fuse_reorder_quantize_transpose(model) == 1
    assert [n.op_type for n in model.graph.node] == ["ReorderOutput", "QuantizeLinear", "Identity"]
    assert model.graph.node[2].input[0] == "q" and not model.graph.value_info  # stale NCHW shape dropped
    assert helper.get_attribute_value(model.graph.node[0].attribute[-1]) == 1
    per_channel = _reorder_graph(np.full(16, 0.1, np.float32))
    assert fuse_reorder_quantize_transpose(per_channel) == 0
    assert len(per_channel.graph.node) == 4
