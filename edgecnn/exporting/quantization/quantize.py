"""Building the ONNX variants of an FP32 export: static INT8 (QDQ, calibrated on real images), FP16 and
dynamic INT8. Only onnx and onnxruntime are used, imported when a variant is built; which settings to
use comes from `edgecnn.exporting.quantization.quant_config.QuantizationConfig`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.quiet import quiet_libraries
from edgecnn.core.text import one_line
from edgecnn.exporting.quantization.calibration import make_data_reader, select_calibration_images
from edgecnn.exporting.quantization.quant_config import QuantizationConfig

DYNAMIC_WARNING = (
    "dynamic quantization turns Conv into ConvInteger, which ONNX Runtime runs far slower than FP32 "
    "Conv on most CPUs; prefer --quantize int8 (static) for CNNs"
)
FP16_NOTE = "GPU variant: FP16 is meant for GPUs (CUDA/TensorRT); most CPUs emulate it and run it slower"


def preprocess_for_quantization(fp32_path: Path, out_path: Path) -> Path:
    """quant_pre_process: shape inference + ORT's graph optimizations so QDQ sees fused Conv/Relu."""
    import onnxruntime.quantization as q

    try:
        with quiet_libraries():
            q.quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=False)
    except Exception as exc:  # noqa: BLE001 - pre-processing is an optimisation; quantize without it
        logging.getLogger(__name__).debug("quant_pre_process failed: %s", exc)
        return fp32_path
    return out_path


def nodes_of_types(model_path: Path, op_types: tuple[str, ...]) -> list[str]:
    if not op_types:
        return []
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in op_types and n.name]


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    calibration_images: np.ndarray,
    input_name: str,
    config: QuantizationConfig,
    *,
    preprocessed: Path | None = None,
) -> Path:
    """Static INT8 in QDQ format, calibrated on `calibration_images` (prepared float32, graph layout)."""
    import onnxruntime.quantization as q

    method = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }[config.calibration_method]
    qtype = {"qint8": q.QuantType.QInt8, "quint8": q.QuantType.QUInt8}
    images = select_calibration_images(calibration_images, config.calibration_samples, config.seed)
    source = preprocessed or fp32_path
    exclude = list(config.nodes_to_exclude) + nodes_of_types(source, config.float_op_types)
    if config.float_depthwise or config.float_stem:
        from edgecnn.exporting.quantization.qdq_rewrites import depthwise_and_stem_convs

        exclude += depthwise_and_stem_convs(source, config.float_depthwise, config.float_stem)
    try:
        with quiet_libraries():
            q.quantize_static(
                str(source),
                str(out_path),
                make_data_reader(images, input_name, config.calibration_batch_size),
                quant_format=q.QuantFormat.QDQ,
                op_types_to_quantize=list(config.op_types) if config.op_types else None,
                per_channel=config.per_channel,
                reduce_range=config.reduce_range,
                activation_type=qtype[config.activation_type],
                weight_type=qtype[config.weight_type],
                nodes_to_exclude=list(dict.fromkeys(exclude)) or None,
                calibrate_method=method,
                extra_options=dict(config.extra_options),
            )
    except Exception as exc:  # noqa: BLE001 - ORT raises many types; the user gets one line
        msg = one_line(exc)
        raise EdgecnnError(f"INT8 quantization failed ({config.describe()}): {msg}") from None
    if config.float_logits and config.float_op_types:
        import onnx

        from edgecnn.exporting.quantization.qdq_rewrites import float_logits

        model = onnx.load(str(out_path))
        if float_logits(model, tuple(config.float_op_types)):
            onnx.checker.check_model(model)
            onnx.save(model, str(out_path))
    return out_path


def convert_fp16(fp32_model: Any) -> Any:
    """FP16 weights and compute with float32 inputs/outputs, so callers feed the same tensors."""
    from onnxruntime.transformers import float16

    try:
        with quiet_libraries():
            model = float16.convert_float_to_float16(fp32_model, keep_io_types=True)
    except Exception as exc:  # noqa: BLE001
        raise EdgecnnError(f"FP16 conversion failed: {one_line(exc)}") from None
    # keep_io_types appends its boundary Casts at the end of the node list; ONNX Runtime accepts that
    # but the ONNX checker (and other runtimes) require topological order.
    topological_sort(model.graph)
    return model


def topological_sort(graph: Any) -> None:
    """Reorder graph.node so every node comes after the producers of its inputs (in place)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise EdgecnnError("FP16 conversion produced a graph with a cycle or a missing input")
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered, strict=True):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def quantize_dynamic_int8(fp32_path: Path, out_path: Path, config: QuantizationConfig) -> Path:
    """Dynamic INT8: weights quantized offline, activations at run time (no calibration data)."""
    import onnxruntime.quantization as q

    qtype = {"qint8": q.QuantType.QInt8, "quint8": q.QuantType.QUInt8}
    try:
        with quiet_libraries():
            q.quantize_dynamic(
                str(fp32_path),
                str(out_path),
                per_channel=config.per_channel,
                reduce_range=config.reduce_range,
                weight_type=qtype[config.weight_type],
                nodes_to_exclude=list(config.nodes_to_exclude) or None,
                op_types_to_quantize=list(config.op_types) if config.op_types else None,
            )
    except Exception as exc:  # noqa: BLE001
        raise EdgecnnError(f"dynamic quantization failed: {one_line(exc)}") from None
    return out_path
