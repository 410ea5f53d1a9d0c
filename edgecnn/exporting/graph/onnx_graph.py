"""Walking an ONNX graph for the export rewrites: producer/consumer indexes, constants, static shapes
from shape inference, attributes, dead-node removal and the flatten pattern several rewrites match."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference


class OnnxGraph:
    """Producer/consumer indexes over a graph, rebuilt after each rewrite."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.graph_outputs = {o.name for o in self.graph.output}
        self.shapes = static_shapes(model)

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def sole_consumer(self, name: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.graph_outputs:
            return None
        return users[0]


def static_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Tensor name -> dims (None where symbolic/unknown), from ONNX shape inference."""
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference failing only means fewer rewrites are provably safe
        inferred = model
    shapes: dict[str, list[int | None]] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def remove_dead(model: onnx.ModelProto) -> None:
    """Drop nodes, initializers and value_info no graph output depends on."""
    g = model.graph
    live = {o.name for o in g.output}
    keep = []
    for node in reversed(g.node):
        if any(o in live for o in node.output):
            keep.append(node)
            live.update(i for i in node.input if i)
    keep.reverse()
    del g.node[:]
    g.node.extend(keep)
    inits = [t for t in g.initializer if t.name in live]
    del g.initializer[:]
    g.initializer.extend(inits)
    vis = [v for v in g.value_info if v.name in live]
    del g.value_info[:]
    g.value_info.extend(vis)


def flatten_input(g: OnnxGraph, node: onnx.NodeProto) -> str | None:
    """The input of a node that flattens [N, ...] to [N, K] exactly; None for anything else."""
    if node.op_type == "Flatten" and int(attr(node, "axis", 1)) == 1:
        return node.input[0]
    if node.op_type == "Reshape":
        target = g.const(node.input[1]) if len(node.input) > 1 else None
        dims = g.shapes.get(node.input[0])
        if target is None or not dims or any(d is None for d in dims[1:]):
            return None
        k = int(np.prod(dims[1:]))
        if target.tolist() in ([-1, k], [0, k]):
            return node.input[0]
    return None


def flatten_weight_users(
    g: OnnxGraph, flat: onnx.NodeProto, rows: int, gemm_ok: bool
) -> list[tuple[onnx.NodeProto, np.ndarray]]:
    """The nodes reading `flat`'s output as `x @ W` with a constant [rows, n] initializer W: MatMul, and
    untransposed Gemm when `gemm_ok`. Empty unless every consumer is one, since a rewrite that permutes
    the flattened order must permute every reader's weight rows."""
    users = g.consumers.get(flat.output[0], [])
    if not users or flat.output[0] in g.graph_outputs:
        return []
    weights = []
    for mm in users:
        ok_op = mm.op_type == "MatMul" or (
            gemm_ok
            and mm.op_type == "Gemm"
            and int(attr(mm, "transA", 0)) == 0
            and int(attr(mm, "transB", 0)) == 0
        )
        w = g.const(mm.input[1]) if ok_op and mm.input[0] == flat.output[0] else None
        if w is None or w.ndim != 2 or w.shape[0] != rows or mm.input[1] not in g.inits:
            return []
        weights.append((mm, w))
    return weights


def replace_weight(g: OnnxGraph, node: onnx.NodeProto, weight: np.ndarray, suffix: str) -> None:
    """Point `node`'s weight input at a new initializer (the old one may have other readers)."""
    name = node.input[1] + suffix
    g.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight), name))
    node.input[1] = name
