"""Instruction-set flags -> INT8 recipe: the pure choice, over the CPUs the project meets."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.isa import isa_class
from edgecnn.exporting.quantization.quant_config import QuantizationConfig
from edgecnn.exporting.quantization.recipes import RECIPES, parse_recipes, recipe_for

ZEN3 = "sse4_1 sse4_2 avx avx2 fma f16c".split()  # AVX2-only EPYC (the machine)
ZEN4 = ZEN3 + "avx512f avx512bw avx512vl avx512_vnni avx512_bf16".split()  # this project's EPYC
SKYLAKE_SP = ZEN3 + "avx512f avx512bw avx512vl".split()  # AVX-512 without VNNI
ALDER_LAKE = ZEN3 + ["avx_vnni"]
SAPPHIRE_RAPIDS = ZEN4 + "amx_tile amx_int8 amx_bf16".split()
GRAVITON2 = "fp asimd asimdhp asimddp".split()
GRAVITON3 = GRAVITON2 + "i8mm bf16 sve".split()
CORTEX_A53 = "fp asimd".split()


@pytest.mark.parametrize(
    ("flags", "machine", "cls", "recipe"),
    [
        (ZEN3, "x86_64", "avx2", "avx2"),
        (SKYLAKE_SP, "x86_64", "avx512", "avx2"),  # AVX-512 without VNNI still saturates (VPMADDUBSW)
        (ZEN4, "x86_64", "avx512-vnni", "vnni"),
        (ALDER_LAKE, "x86_64", "avx-vnni", "vnni"),
        (SAPPHIRE_RAPIDS, "x86_64", "amx", "vnni"),
        (["sse4_2"], "x86_64", "x86", "avx2"),
        (GRAVITON2, "aarch64", "arm-dotprod", "arm"),
        (GRAVITON3, "aarch64", "arm-i8mm", "arm"),
        (CORTEX_A53, "aarch64", "arm", "arm"),
        (["neon", "asimd"], "arm64", "arm", "arm"),
        (["AVX2", "FMA"], "AMD64", "avx2", "avx2"),  # Windows/py-cpuinfo spellings
    ],
)
def test_isa_class_and_recipe(flags: list[str], machine: str, cls: str, recipe: str) -> None:
    assert isa_class(flags, machine) == cls
    assert recipe_for(flags, machine).name == recipe


def test_only_non_vnni_x86_reduces_range() -> None:
    """reduce_range is the guide's fix for VPMADDUBSW saturation: needed without VNNI, never with it."""
    for flags, machine in ((ZEN3, "x86_64"), (SKYLAKE_SP, "x86_64")):
        assert recipe_for(flags, machine).reduce_range
    for flags, machine in ((ZEN4, "x86_64"), (SAPPHIRE_RAPIDS, "x86_64"), (GRAVITON3, "aarch64")):
        assert not recipe_for(flags, machine).reduce_range


def test_types_follow_the_fast_kernels() -> None:
    assert recipe_for(ZEN4, "x86_64").to_dict()["types"] == "U8S8"
    assert recipe_for(ZEN3, "x86_64").to_dict()["types"] == "U8S8"  # S8S8 on x86 = portable C++ GEMM
    assert recipe_for(GRAVITON2, "aarch64").to_dict()["types"] == "S8S8"  # SDOT
    assert all(r.quant_format == "QDQ" for r in RECIPES.values())


def test_every_isa_class_has_a_recipe_and_the_first_one_is_its_default() -> None:
    from edgecnn.core.isa import ISA_CLASSES

    for cls in ISA_CLASSES:
        assert any(cls in r.suits for r in RECIPES.values()), cls
    # Two recipes for VNNI CPUs (per-tensor, per-channel): the device pick measures which one wins.
    assert [r.name for r in RECIPES.values() if "avx512-vnni" in r.suits] == ["vnni", "vnni-pc"]
    assert RECIPES["vnni-pc"].per_channel and not RECIPES["vnni"].per_channel


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(EdgecnnError, match="riscv64"):
        isa_class(["rv64imafdc"], "riscv64")


def test_recipe_quantization_keeps_the_base_settings() -> None:
    base = QuantizationConfig(calibration_samples=100, nodes_to_exclude=("conv_a",))
    q = RECIPES["avx2"].quantization(base)
    assert q.reduce_range and q.float_stem and not q.float_depthwise and not q.per_channel
    assert q.calibration_samples == 100 and q.nodes_to_exclude == ("conv_a",)
    assert q.float_op_types == ("Softmax",)  # ORT fuses DQ -> op -> Q between int8 ops: no float islands
    assert RECIPES["vnni"].quantization(base) == QuantizationConfig(calibration_samples=100,
                                                                    nodes_to_exclude=("conv_a",))  # fmt: skip


def test_parse_recipes() -> None:
    assert parse_recipes("avx2") == ("avx2",)
    assert parse_recipes("all") == ("vnni-pc", "avx2", "arm", "openvino")
    assert parse_recipes("vnni,avx2") == ("avx2",)  # the default recipe is always built as model.int8.onnx
    with pytest.raises(EdgecnnError, match="unknown INT8 recipe 'sse'"):
        parse_recipes("sse")


def test_export_help_lists_every_recipe_from_the_table() -> None:
    """`--int8-recipes`'s help is built from RECIPES (it listed three by hand and left out openvino)."""
    from typer.testing import CliRunner

    from edgecnn.cli import app

    text = " ".join(CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "400"}).output.split())
    for recipe in RECIPES.values():
        if recipe.variant != "int8":
            assert f"{recipe.name} ({recipe.summary})" in text


def test_depthwise_and_stem_convs_found_by_shape(tmp_path) -> None:
    """A stem conv (3 -> 8), a depthwise conv (8 groups) and a pointwise conv: only the first two."""
    from edgecnn.exporting.quantization.qdq_rewrites import depthwise_and_stem_convs

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w_stem"),
        numpy_helper.from_array(rng.normal(size=(8, 1, 3, 3)).astype(np.float32), "w_dw"),
        numpy_helper.from_array(rng.normal(size=(16, 8, 1, 1)).astype(np.float32), "w_pw"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w_stem"], ["a"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w_dw"], ["b"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "w_pw"], ["y"], name="pw"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])],
        inits,
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert depthwise_and_stem_convs(path, True, True) == ["stem", "dw"]
    assert depthwise_and_stem_convs(path, True, False) == ["dw"]
    assert depthwise_and_stem_convs(path, False, True) == ["stem"]


def test_openvino_recipe_runs_convs_in_int8_where_the_default_runs_them_in_f32(
    exported_bundle, mnist_dir, tmp_path
) -> None:
    """Issue 19's finding on a real model: with edgecnn's default asymmetric weights OpenVINO's CPU
    plugin dequantizes them and runs every Conv in f32; the openvino recipe's symmetric weights run in
    int8 (the compiled model's runtime graph says which), at the same accuracy."""
    pytest.importorskip("openvino")
    from edgecnn.core.metadata import read_metadata
    from edgecnn.data import load_dataset
    from edgecnn.exporting.quantization.quantize import quantize_int8
    from edgecnn.runtime.backends.registry import open_model_file
    from edgecnn.runtime.preprocess import prepare_batch
    from edgecnn.runtime.session_config import SessionConfig

    fp32 = exported_bundle.output_dir / "model.onnx"
    meta = read_metadata(fp32)
    mnist = load_dataset("mnist", mnist_dir, download=False)
    x_cal = prepare_batch(mnist.x_train[:200], meta)
    x_test, y = prepare_batch(mnist.x_test[:1000], meta), mnist.y_test[:1000]
    conv_precisions, accuracy = {}, {}
    for name in ("vnni", "openvino"):
        qcfg = RECIPES[name].quantization(QuantizationConfig(calibration_samples=200))
        out = quantize_int8(fp32, tmp_path / f"{name}.onnx", x_cal, "input", qcfg)
        opened = open_model_file(out, SessionConfig(runtime="openvino", precision="fp32"))
        types = opened.placement()["by_precision_layer_types"]
        conv_precisions[name] = {p for p, layers in types.items() if "Convolution" in layers}
        accuracy[name] = float(np.mean(opened.run(x_test).argmax(1) == y))
    assert conv_precisions["vnni"] == {"f32"}
    assert conv_precisions["openvino"] and "f32" not in conv_precisions["openvino"]
    assert abs(accuracy["openvino"] - accuracy["vnni"]) < 0.01
