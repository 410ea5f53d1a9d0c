"""TensorRT's explicit-quantization rules for an ONNX Q/DQ graph, checked on the file: the one check
used by `export --target tensorrt` (its self-check) and by `--device tensorrt --precision int8` (bench,
eval, predict: they refuse a file that breaks them).

The rules, and where they come from:

1. Signed INT8, symmetric, zero point 0. TensorRT "employs a symmetric quantization scheme, where
   both activations and weights are mapped to quantized values centered around zero", INT8 meaning
   signed 8-bit (TensorRT developer guide, "Working with Quantized Types",
   https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/work-quantized-types.html).
   So every QuantizeLinear/DequantizeLinear has an int8 zero point equal to 0 (a missing zero point
   means uint8 in ONNX, so it is refused too).
2. Weights as float + a Q/DQ pair, never a DequantizeLinear on a stored integer constant. TensorRT
   quantizes high-precision weights with the IQuantizeLayer scale itself ("Explicit Quantization",
   https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/quantized-types-explicit-quantization.html);
   TensorRT 8.x's parser (still on many JetPack releases) rejects a DequantizeLinear whose input is a
   constant: "only activation types allowed as input to this layer" (onnxruntime #14229, even with
   `AddQDQPairToWeight`, because of the bias).
3. Biases stay float: no DequantizeLinear on an int32 bias. onnxruntime's quantizer writes one by
   default (`QuantizeBias`); TensorRT's parser refuses it as an invalid node (onnx/onnx-tensorrt
   #850 "Invalid Node - model.0.conv.bias_DequantizeLinear"; onnxruntime #14229).
4. Per-channel weights on the output-channel axis: Conv weight axis 0 (K), Gemm axis 0 with
   transB=1 (else 1), MatMul axis 1; activations per tensor (one scale). The developer guide's
   explicit-quantization section: weights per channel along K, activations per tensor.
5. Q/DQ only where TensorRT fuses them into an INT8 kernel: on the inputs of Conv/ConvTranspose/
   Gemm/MatMul (the guide recommends quantizing "all inputs of weighted operations"), nothing around
   ops TensorRT then runs in float (Softmax, the logits). Standard ONNX ops only (no com.microsoft
   QGemm/QLinear*: TensorRT has no importer for them, onnx-tensorrt #560).

`trtexec --int8` / Polygraphy apply rules 1-3 when they parse the file (they fail there); rules 4-5 are
what makes the engine fast rather than what makes it build, and are checked here all the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError

QDQ = ("QuantizeLinear", "DequantizeLinear")
FUSING_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
EXPORT_HINT = "export it with `edgecnn export MODEL --quantize int8 --target tensorrt`"


def _constants(graph: Any) -> dict[str, Any]:
    """Initializers and Constant-node values by tensor name, as numpy arrays."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _attr(node: Any, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _weight_axis(node: Any, input_index: int) -> int | None:
    """The output-channel axis of the weight `node` reads at `input_index`, None for an activation."""
    if node.op_type == "Conv" and input_index == 1:
        return 0
    if node.op_type == "ConvTranspose" and input_index == 1:
        return 1
    if node.op_type == "Gemm" and input_index == 1:
        return 0 if _attr(node, "transB", 0) else 1
    if node.op_type == "MatMul" and input_index == 1:
        return 1
    return None


def _zero_point_problem(node: Any, consts: dict[str, Any]) -> str | None:
    if len(node.input) < 3 or not node.input[2]:
        return f"{node.name or node.op_type}: no zero point (ONNX then means uint8; TensorRT needs int8 0)"
    zp = consts.get(node.input[2])
    if zp is None:
        return f"{node.name}: zero point {node.input[2]!r} is not a constant"
    if str(zp.dtype) != "int8":
        return f"{node.name}: {zp.dtype} zero point (TensorRT needs signed int8)"
    if zp.any():
        return f"{node.name}: non-zero zero point (asymmetric; TensorRT needs 0)"
    return None


def trt_int8_problems(path: str | Path) -> list[str]:
    """Every way the Q/DQ graph at `path` breaks the rules above, one short line each ([] = none)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise EdgecnnError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    consts = _constants(graph)
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    problems = [
        f"{n.name}: {n.domain} op {n.op_type} (TensorRT reads standard Q/DQ only)"
        for n in graph.node
        if n.domain not in ("", "ai.onnx")
    ]
    qdq = [n for n in graph.node if n.op_type in QDQ]
    if not qdq:
        problems.append("no QuantizeLinear/DequantizeLinear nodes (no INT8 scales)")
    for node in qdq:
        stored = consts.get(node.input[0])
        if node.op_type == "QuantizeLinear" or stored is None or str(stored.dtype) != "int32":
            problems.append(_zero_point_problem(node, consts) or "")  # a bias gets its own line
        if node.op_type == "DequantizeLinear":
            problems.extend(_dq_problems(node, consts, consumers))
        elif any(c.op_type != "DequantizeLinear" for c, _ in consumers.get(node.output[0], [])):
            problems.append(f"{node.name}: QuantizeLinear not followed by DequantizeLinear")
    return [p for p in problems if p]


def _dq_problems(node: Any, consts: dict[str, Any], consumers: dict[str, list[tuple[Any, int]]]) -> list[str]:
    name = node.name or node.output[0]
    stored = consts.get(node.input[0])
    if stored is not None and str(stored.dtype) == "int32":
        return [f"{name}: int32 bias DequantizeLinear (TensorRT keeps biases float)"]
    if stored is not None:
        return [
            f"{name}: DequantizeLinear on a stored {stored.dtype} constant (TensorRT 8.x wants a Q/DQ pair)"
        ]
    problems = []
    scale = consts.get(node.input[1])
    for consumer, index in consumers.get(node.output[0], []):
        if consumer.op_type not in FUSING_OPS:
            problems.append(
                f"{name}: Q/DQ before {consumer.op_type} (TensorRT fuses Q/DQ into Conv/Gemm/MatMul)"
            )
            continue
        axis = _weight_axis(consumer, index)
        size = 1 if scale is None else int(scale.size)
        if axis is None and size != 1:
            problems.append(f"{name}: per-channel scale on an activation (TensorRT wants one scale)")
        elif axis is not None and (size < 2 or _attr(node, "axis", 1) != axis):
            problems.append(f"{name}: {consumer.op_type} weight not per output channel (axis {axis})")
    return problems


def check_trt_int8(path: str | Path, name: str | None = None) -> None:
    """Refuse (one line) a file TensorRT's INT8 mode would reject or misread."""
    problems = trt_int8_problems(path)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise EdgecnnError(
            f"{name or Path(path).name} is not a TensorRT INT8 graph: {problems[0]}{more}; {EXPORT_HINT}"
        )
