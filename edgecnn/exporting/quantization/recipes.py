"""Which INT8 recipe suits which CPU: instruction-set flags -> ONNX Runtime INT8 settings.

Pure data and pure functions (no onnx/onnxruntime import), so the choice is testable on any machine
and the runtime side can read the same names. A recipe is a hypothesis, not a verdict: export builds
one INT8 file per recipe asked for, and `edgecnn tune` measures them (and FP32) on the device itself.

Why each choice, from ONNX Runtime's quantization guide ("Quantize ONNX models": data type and
reduce_range sections) and MLAS's kernel dispatch (onnxruntime/core/mlas/lib/platform.cpp, qgemm.cpp):

- Format: QDQ everywhere. ORT's guide recommends QDQ on CPU (its graph transformers fuse
  DQ -> op -> Q into the same QLinear kernels QOperator would name), it is the only format other
  runtimes (TensorRT, OpenVINO) read, and "S8S8 with QOperator format will be slow on x86-64".
- x86 without VNNI (AVX2, or AVX-512 F/BW without VNNI): U8S8 GEMMs dispatch to
  MlasGemmU8S8DispatchAvx2, built on VPMADDUBSW, which adds two u8*s8 products into a *saturating*
  int16. The guide: "Reduce-range will quantize the weights to 7-bits. It is designed for the U8S8
  format on AVX2 and AVX512 (non-VNNI) machines to mitigate saturation issues. This is not needed on
  machines supporting VNNI." With 7-bit weights 2*255*64 = 32640 < 32767: no saturation. U8U8
  (VPMADDWD on widened values) cannot saturate either but runs at half the width; S8S8 on x86 without
  AVX-VNNI-INT8 falls to MlasGemmQuantDispatchDefault (portable C++), so it is never chosen on x86.
  Per-channel weights would also need reduce_range here (the guide says so), so per-tensor stays.
- x86 with AVX512_VNNI / AVX_VNNI: the same U8S8 dispatch picks VPDPBUSD kernels (int32 accumulate,
  no saturation): full 8-bit weights, no reduce_range.
- x86 with AMX-INT8: MlasGemmU8S8DispatchAmx serves U8S8 (and U8U8) GEMMs: the same U8S8 file.
- ARM64 with dot product (asimddp) or i8mm: S8S8 GEMMs go to MlasGemmS8S8DispatchSdot / Smmla (SDOT,
  SMMLA, no saturation); U8S8 goes through UDOT with a sign flip of the weights. S8S8 is the native one.
- Which ops stay float. Softmax always (probabilities in steps of 1/256 tie top-1s for no speed-up).
  A one-input-channel stem stays float (int8_rewrites: a 9-deep reduction runs ~4x slower in int8).
  On x86 without VNNI also the conv fed by the graph input (an RGB stem: a 27-deep reduction, 4x slower
  in int8 than ORT's float NCHWc kernel in a profile of MobileNetV2(0.35) on a Zen 4).
- What cannot stay float: an op *between* int8 neighbours. quantize_static's nodes_to_exclude leaves
  it without its own Q/DQ, but its inputs still come from DequantizeLinear and its output still goes
  to the next conv's QuantizeLinear, and ORT's QDQ transformers fuse DQ -> op -> Q into the QLinear
  op anyway (WeightBiasQuantization even quantizes a float Conv's weights there). Measured on
  MobileNetV2(0.35), ORT 1.31: excluding every depthwise conv, Add and GlobalAveragePool left 2 float
  convs (the stem and the depthwise right after it, both fed by float data) and 50 QLinearConv,
  10 QLinearAdd and a QLinearGlobalAveragePool. So no recipe claims more than the float stem; a
  float island between int8 ops would need Q/DQ-free boundaries, which ORT then runs with transposes
  (NCHWc float <-> NHWC int8) that cost more than they save (0.38 vs 0.32 ms at batch 1, same CPU).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.isa import isa_class
from edgecnn.exporting.quantization.quant_config import QuantizationConfig

FLOAT_ALWAYS = ("Softmax",)
_TYPE_CODE = {"quint8": "U8", "qint8": "S8"}  # ORT's names for the activation/weight pair: U8S8...


@dataclass(frozen=True)
class Int8Recipe:
    """ORT INT8 settings for a family of CPUs. `name` is the variant suffix (model.int8-<name>.onnx;
    the default recipe is the bundle's model.int8.onnx)."""

    name: str
    suits: tuple[str, ...]  # ISA classes this recipe is meant for
    activation_type: str  # "quint8" | "qint8"
    weight_type: str
    reduce_range: bool
    per_channel: bool
    float_depthwise: bool  # depthwise convs stay float
    float_stem: bool  # the first conv fed by the graph input stays float (any channel count)
    float_op_types: tuple[str, ...]
    why: str
    summary: str  # what `export --help` says of it, in a few words
    quant_format: str = "QDQ"
    # Symmetric weights (zero point 0). None: the base config's choice (edgecnn's default is asymmetric,
    # which ORT folds into its kernels but OpenVINO cannot; see the "openvino" recipe).
    weight_symmetric: bool | None = None
    # edgecnn's INT8 graph rewrites (qdq_rewrites: the one-channel stem kept float, pool before relu,
    # NHWC flatten) are shaped for ORT's kernels; False quantizes the plain FP32 graph instead.
    ort_graph_rewrites: bool = True

    @property
    def variant(self) -> str:
        return "int8" if self.name == DEFAULT_RECIPE else f"int8-{self.name}"

    def quantization(self, base: QuantizationConfig) -> QuantizationConfig:
        """`base` (calibration, exclusions, seed...) with this recipe's data types and float ops."""
        return replace(
            base,
            activation_type=self.activation_type,
            weight_type=self.weight_type,
            reduce_range=self.reduce_range,
            per_channel=self.per_channel,
            float_depthwise=self.float_depthwise,
            float_stem=self.float_stem,
            float_op_types=tuple(dict.fromkeys((*base.float_op_types, *self.float_op_types))),
            extra_options=dict(base.extra_options)
            if self.weight_symmetric is None
            else {**base.extra_options, "WeightSymmetric": self.weight_symmetric},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variant": self.variant,
            "suits": list(self.suits),
            "format": self.quant_format,
            "types": _TYPE_CODE[self.activation_type] + _TYPE_CODE[self.weight_type],
            "reduce_range": self.reduce_range,
            "per_channel": self.per_channel,
            "float_depthwise": self.float_depthwise,
            "float_stem": self.float_stem,
            "float_op_types": list(self.float_op_types),
            "weight_symmetric": self.weight_symmetric,
            "ort_graph_rewrites": self.ort_graph_rewrites,
            "why": self.why,
        }


DEFAULT_RECIPE = "vnni"
RECIPES: dict[str, Int8Recipe] = {
    "vnni": Int8Recipe(
        name="vnni",
        suits=("amx", "avx512-vnni", "avx-vnni"),
        activation_type="quint8",
        weight_type="qint8",
        reduce_range=False,
        per_channel=False,
        float_depthwise=False,
        float_stem=False,
        float_op_types=FLOAT_ALWAYS,
        why="U8S8 runs on VPDPBUSD/AMX tiles with int32 accumulation: full 8-bit weights, everything int8",
        summary="AVX512-VNNI/AMX, the default model.int8.onnx",
    ),
    # Same ISAs, per-channel weights: measured on MobileNetV2(0.35) 96x96 on a Zen 4 (AVX512_VNNI), 1 thread,
    # interleaved: 1.26x / 1.73x FP32's speed at batch 1 / 64 against 0.84x / 1.05x per-tensor, same
    # accuracy; per-tensor stays the default because it is faster on plain convs (QuantizationConfig).
    # Listed after "vnni", so recipe_for() still answers "vnni"; tune decides between them.
    "vnni-pc": Int8Recipe(
        name="vnni-pc",
        suits=("amx", "avx512-vnni", "avx-vnni"),
        activation_type="quint8",
        weight_type="qint8",
        reduce_range=False,
        per_channel=True,
        float_depthwise=False,
        float_stem=False,
        float_op_types=FLOAT_ALWAYS,
        why="as vnni with per-channel weights: faster depthwise/pointwise convs on MobileNet-style nets",
        summary="as vnni, per-channel weights",
    ),
    "avx2": Int8Recipe(
        name="avx2",
        suits=("avx512", "avx2", "x86"),
        activation_type="quint8",
        weight_type="qint8",
        reduce_range=True,
        per_channel=False,
        float_depthwise=False,
        float_stem=True,
        float_op_types=FLOAT_ALWAYS,
        why="U8S8 without VNNI uses saturating VPMADDUBSW: 7-bit weights (reduce_range); the conv fed by "
        "the input stays float, where ORT's float kernel beats its int8 one on shallow reductions",
        summary="x86 without VNNI",
    ),
    "arm": Int8Recipe(
        name="arm",
        suits=("arm-i8mm", "arm-dotprod", "arm"),
        activation_type="qint8",
        weight_type="qint8",
        reduce_range=False,
        per_channel=False,
        float_depthwise=False,
        float_stem=False,
        float_op_types=FLOAT_ALWAYS,
        why="S8S8 runs on SDOT/SMMLA (MlasGemmS8S8DispatchSdot/Smmla) with int32 accumulation",
        summary="Arm dot product",
    ),
    # Not an instruction set but a runtime: OpenVINO's CPU plugin runs a conv in int8 only when its
    # weights are symmetric (zero point 0). With edgecnn's default asymmetric weights it dequantizes
    # them and runs every Conv in f32 (the compiled model's runtime graph says so), which is why issue 11
    # saw its QDQ INT8 slower than its own FP32. The plain FP32 graph, not ORT's INT8 layout: its float
    # stem cost OpenVINO 0.93 vs 0.65 ms (keras-convnet, batch 64, 1 thread, AMX Xeon), and quantized
    # plainly this recipe matches NNCF's own INT8 of the same model (0.649 vs 0.650 ms). Measured in
    # benchmarks/openvino_int8.py; docs/bench-peers-amx.md.
    "openvino": Int8Recipe(
        name="openvino",
        suits=("openvino",),
        activation_type="quint8",
        weight_type="qint8",
        reduce_range=False,
        per_channel=True,
        float_depthwise=False,
        float_stem=False,
        float_op_types=FLOAT_ALWAYS,
        why="symmetric per-channel weights: OpenVINO's CPU plugin runs those convs in int8 (AMX/VNNI); "
        "with asymmetric weights it runs them in f32",
        summary="symmetric weights for OpenVINO's int8 convs",
        weight_symmetric=True,
        ort_graph_rewrites=False,
    ),
}


def recipe_for(flags: Iterable[str], machine: str) -> Int8Recipe:
    """The recipe meant for a CPU with these flags (before measurement confirms it)."""
    cls = isa_class(flags, machine)
    return next(r for r in RECIPES.values() if cls in r.suits)


def recipes_help() -> str:
    """`--int8-recipes`'s list: every recipe beyond the default with its summary, from RECIPES."""
    return ", ".join(f"{r.name} ({r.summary})" for r in RECIPES.values() if r.name != DEFAULT_RECIPE)


def parse_recipes(text: str) -> tuple[str, ...]:
    """`--int8-recipes avx2,arm` (or `all`) -> recipe names beyond the default, validated."""
    names = [p.strip().lower() for p in str(text).split(",") if p.strip()]
    if names == ["all"]:
        return tuple(n for n in RECIPES if n != DEFAULT_RECIPE)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise EdgecnnError(f"unknown INT8 recipe {unknown[0]!r}; choose from {', '.join(RECIPES)} or all")
    return tuple(dict.fromkeys(n for n in names if n != DEFAULT_RECIPE))


def recipe_of_variant(variant: str) -> Int8Recipe | None:
    """The recipe an INT8 variant name was built with (int8 = the default recipe), else None."""
    if variant == "int8":
        return RECIPES[DEFAULT_RECIPE]
    if variant.startswith("int8-"):
        return RECIPES.get(variant.removeprefix("int8-"))
    return None


def recipe_metadata(variant: str) -> dict[str, str]:
    """ModelMetadata.extra for an INT8 variant: its recipe and the ISA classes it suits."""
    recipe = recipe_of_variant(variant)
    if recipe is None:
        return {}
    return {"int8_recipe": recipe.name, "int8_suits": json.dumps(list(recipe.suits))}
