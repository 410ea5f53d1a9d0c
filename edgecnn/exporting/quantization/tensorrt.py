"""The TensorRT INT8 variant (`export --quantize int8 --target tensorrt` -> model.int8-trt.onnx).

TensorRT reads INT8 scales from Q/DQ nodes ("explicit quantization") and accepts only signed,
symmetric ones: INT8 activations and weights with zero point 0, weights per output channel. edgecnn's
CPU INT8 (uint8 activations, asymmetric per-tensor weights, a float first block, a fused QGemm with
float logits) is tuned for ONNX Runtime's CPU kernels; TensorRT would hand those Q/DQ pairs to the
CUDA EP or refuse them. So this variant is the plain FP32 graph quantized by onnxruntime's quantizer
to follow TensorRT's explicit-quantization rules (written down, with their sources, in
`edgecnn.runtime.trt_qdq`, which checks the file before it is kept):

- QInt8 activations and weights, `ActivationSymmetric` / `WeightSymmetric` (zero points 0),
- per-channel weights (TensorRT's per-channel scales on the output-channel axis),
- `AddQDQPairToWeight`: float weights with a Q/DQ pair (TensorRT 8.x rejects a DequantizeLinear on a
  stored int8 constant; TensorRT 10 accepts both),
- `QuantizeBias: False`: biases stay float (an int32 bias DequantizeLinear is an invalid node to
  TensorRT's parser, onnx-tensorrt #850, onnxruntime #14229),
- only Conv/Gemm/MatMul quantized (their inputs), where TensorRT fuses Q/DQ into INT8 kernels; no Q/DQ
  around ops it then runs in float; Softmax stays float (INT8 probabilities would step in 1/256),
- QDQ format, standard ONNX ops only: no edgecnn INT8 graph rewrites, no com.microsoft QGemm.

It is validated on the CPU for accuracy like every other variant (the export.json row); its latency
there says nothing about TensorRT (`edgecnn bench --device tensorrt --precision int8` measures that)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edgecnn.core.metadata import INPUT_NAME
from edgecnn.exporting.export_config import ExportConfig
from edgecnn.exporting.quantization.calibration import check_calibration_images, select_calibration_images
from edgecnn.exporting.quantization.quant_config import QuantizationConfig
from edgecnn.exporting.quantization.quantize import quantize_int8
from edgecnn.exporting.variants import BuiltVariant, VariantContext, finish_variant
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.trt_qdq import check_trt_int8

TRT_INT8_VARIANT = "int8-trt"
TARGET = "tensorrt"
TRT_EXTRA_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "AddQDQPairToWeight": True,
    "QuantizeBias": False,
    # Their outputs stay float: TensorRT fuses the Q/DQ on a Conv's inputs; a Q/DQ on its output
    # would sit before Relu/Softmax, which TensorRT then runs in float between extra conversions.
    "OpTypesToExcludeOutputQuantization": ["Conv", "Gemm", "MatMul"],
}
TRT_OP_TYPES = ("Conv", "Gemm", "MatMul")


def trt_quantization(base: QuantizationConfig) -> QuantizationConfig:
    """The calibration settings the user chose (method, samples, seed), in TensorRT's Q/DQ format."""
    return replace(
        base,
        per_channel=True,
        activation_type="qint8",
        weight_type="qint8",
        reduce_range=False,
        nodes_to_exclude=(),
        op_types=TRT_OP_TYPES,
        float_logits=False,
        extra_options=dict(TRT_EXTRA_OPTIONS),
    )


def build_int8_trt(ctx: VariantContext, config: ExportConfig, x_train: np.ndarray) -> BuiltVariant:
    qcfg = trt_quantization(config.quantization)
    x_cal = prepare_batch(
        select_calibration_images(x_train, qcfg.calibration_samples, qcfg.seed), ctx.metadata
    )
    check_calibration_images(x_cal, ctx.metadata.graph_input_shape)
    out = quantize_int8(ctx.fp32_path, ctx.work / "model.int8-trt.onnx", x_cal, INPUT_NAME, qcfg)
    check_trt_int8(out)  # the rules bench --precision int8 enforces: a file that breaks them is never kept
    settings: dict[str, Any] = {**qcfg.to_dict(), "target": TARGET}
    notes = [
        f"TensorRT Q/DQ: signed symmetric INT8, per-channel weights, {qcfg.calibration_method} on "
        f"{qcfg.calibration_samples} images; accuracy measured on the CPU"
    ]
    metadata = replace(ctx.metadata, variant=TRT_INT8_VARIANT, extra={**ctx.metadata.extra, "target": TARGET})
    return finish_variant(ctx, TRT_INT8_VARIANT, out, settings, notes, metadata=metadata)
