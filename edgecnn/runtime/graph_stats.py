"""Static facts about an ONNX graph: multiply-accumulates per image."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def count_macs(model: Any) -> int | None:
    """Multiply-accumulates per image of Conv/MatMul/Gemm (and their quantized forms), from onnx shape
    inference with the batch fixed to 1. None when a counted op's shapes stay unknown: a partial count
    would understate the work and overstate nothing, but it would still be a wrong GFLOP/s."""
    import onnx
    from onnx import shape_inference

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    batch = 1
    for inp in graph.input:
        if inp.name in init_names or not inp.type.tensor_type.HasField("shape"):
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims:
            if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                batch = dims[0].dim_value  # a static batch: report per image
            else:
                dims[0].ClearField("dim_param")
                dims[0].dim_value = 1
    try:
        # data_prop resolves Shape->Slice->Concat->Reshape chains that tf2onnx emits before Dense layers.
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - a model shape inference cannot follow just has no MAC count
        return None
    shapes: dict[str, list[int | None]] = {}
    for t in inferred.graph.initializer:
        shapes[t.name] = list(t.dims)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    for node in inferred.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = list(attr.t.dims)

    def known(name: str) -> list[int] | None:
        s = shapes.get(name)
        return None if s is None or any(d is None for d in s) else s  # type: ignore[return-value]

    total = 0
    weight_index = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
    matmul_b_index = {"MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3}
    for node in inferred.graph.node:
        op = node.op_type
        if op in weight_index:
            out, w = known(node.output[0]), known(node.input[weight_index[op]])
            if out is None or w is None:
                return None
            total += math.prod(out) * math.prod(w[1:])
        elif op in matmul_b_index:
            out, a = known(node.output[0]), known(node.input[0])
            if out is None or a is None:
                return None
            total += math.prod(out) * a[-1]
        elif op == "Gemm":
            out, a = known(node.output[0]), known(node.input[0])
            if out is None or a is None:
                return None
            trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
            total += math.prod(out) * (a[0] if trans_a else a[-1])
    return total // batch if total else None


def count_compute_nodes(path: str | Path) -> int:
    """Conv/ConvTranspose/Gemm/MatMul nodes in the main graph: what TensorRT must take for a run to be
    a TensorRT result (placement.check_placement)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return sum(node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") for node in graph.node)
