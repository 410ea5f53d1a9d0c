"""Export-time graph rewrites that remove work tf2onnx leaves in a converted Keras CNN (every variant).

tf2onnx keeps Keras' NHWC semantics on an NCHW graph: before Flatten it transposes the feature map
back to NHWC, and it may compute the Flatten target shape at run time (Shape -> Gather -> Cast ->
Slice -> Concat -> Cast -> Reshape). `optimize_graph` turns that Reshape into a Flatten, folds the
transpose into the next MatMul's weight rows so no transpose runs, and fuses MatMul + Add into Gemm
(one QGemm in INT8 instead of QLinearMatMul + QLinearAdd).

Every rewrite recognises one pattern completely (ops, attributes, static shapes, sole consumers) or
leaves the graph alone, and is exact in float; the export parity gate checks the result numerically.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecnn.core.errors import EdgecnnError
from edgecnn.exporting.graph.onnx_graph import (
    OnnxGraph,
    attr,
    flatten_input,
    flatten_weight_users,
    remove_dead,
    replace_weight,
)

# Ops that may appear in a subgraph computing a Reshape target from tensor shapes.
_SHAPE_OPS = frozenset(
    {"Shape", "Gather", "Cast", "Slice", "Concat", "Unsqueeze", "Squeeze", "Constant", "Identity",
     "Mul", "Div", "Add", "Sub", "ReduceProd", "Reshape"}
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Rewrite 1: dynamic flatten (Shape/Gather/.../Concat -> Reshape) -> Flatten(axis=1)
# --------------------------------------------------------------------------------------------------
def _shape_subgraph(g: OnnxGraph, name: str) -> list[onnx.NodeProto] | None:
    """Nodes computing `name` from tensor shapes and constants only; None if anything else feeds it."""
    nodes: dict[int, onnx.NodeProto] = {}
    stack = [name]
    while stack:
        t = stack.pop()
        if not t or t in g.inits:
            continue
        node = g.producer.get(t)
        if node is None or node.op_type not in _SHAPE_OPS:
            return None  # a graph input or a data op: the value is not a function of shapes alone
        if id(node) in nodes:
            continue
        nodes[id(node)] = node
        if node.op_type != "Shape":
            stack.extend(node.input)
    order = {id(n): i for i, n in enumerate(g.graph.node)}
    return sorted(nodes.values(), key=lambda n: order[id(n)])


def _evaluate_shape_subgraph(
    g: OnnxGraph, nodes: list[onnx.NodeProto], target: str, feeds: dict[str, np.ndarray]
) -> np.ndarray | None:
    from onnx.reference import ReferenceEvaluator

    used = {i for n in nodes for i in n.input if i}
    inits = [t for t in g.graph.initializer if t.name in used]
    inputs = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape))
        for name, arr in feeds.items()
    ]
    out = helper.make_tensor_value_info(target, onnx.TensorProto.INT64, None)
    sub = helper.make_model(
        helper.make_graph(list(nodes), "shape_subgraph", inputs, [out], initializer=inits),
        opset_imports=list(g.model.opset_import),
    )
    try:
        (value,) = ReferenceEvaluator(sub).run(None, feeds)
    except Exception:  # noqa: BLE001 - anything the evaluator cannot run is simply not rewritten
        return None
    return np.asarray(value)


def _constant_flatten(g: OnnxGraph) -> bool:
    """Reshape(x, shape computed from Shape(x)) that always yields [batch, prod(rest)] -> Flatten(axis=1)."""
    changed = False
    for node in list(g.graph.node):
        if node.op_type != "Reshape" or len(node.input) < 2 or g.const(node.input[1]) is not None:
            continue
        if int(attr(node, "allowzero", 0) or 0) != 0:
            continue
        data = node.input[0]
        dims = g.shapes.get(data)
        if not dims or len(dims) < 2 or any(d is None for d in dims[1:]):
            continue
        sub = _shape_subgraph(g, node.input[1])
        if not sub:
            continue
        # Only shapes of `data` itself (or of the tensor a Transpose turned into `data`) may feed the
        # target; then the batch below is the same batch `data` carries.
        allowed = {data}
        prod = g.producer.get(data)
        if prod is not None and prod.op_type == "Transpose":
            allowed.add(prod.input[0])
        shape_nodes = [n for n in sub if n.op_type == "Shape"]
        if not shape_nodes or any(n.input[0] not in allowed for n in shape_nodes):
            continue
        k = int(np.prod(dims[1:]))
        ok = True
        for batch in (1, 3):
            feeds: dict[str, np.ndarray] = {}
            for s in shape_nodes:
                sd = g.shapes.get(s.input[0])
                if not sd or any(d is None for d in sd[1:]):
                    ok = False
                    break
                feeds[s.input[0]] = np.zeros([batch, *sd[1:]], dtype=np.float32)
            if not ok:
                break
            value = _evaluate_shape_subgraph(g, sub, node.input[1], feeds)
            if value is None or value.tolist() not in ([batch, k], [-1, k], [0, k]):
                ok = False
                break
        if not ok:
            continue
        flatten = helper.make_node("Flatten", [data], list(node.output), name=node.name or None, axis=1)
        node.CopyFrom(flatten)
        changed = True
    return changed


# --------------------------------------------------------------------------------------------------
# Rewrite 2: Transpose -> Flatten -> MatMul(W)  ==>  Flatten -> MatMul(W with permuted rows)
# --------------------------------------------------------------------------------------------------
def _fold_transpose_into_matmul(g: OnnxGraph) -> bool:
    changed = False
    for flat in list(g.graph.node):
        src = flatten_input(g, flat)
        if src is None:
            continue
        tr = g.producer.get(src)
        if tr is None or tr.op_type != "Transpose" or g.sole_consumer(src) is not flat:
            continue
        perm = list(attr(tr, "perm", []) or [])
        in_dims = g.shapes.get(tr.input[0])
        if not perm or perm[0] != 0 or not in_dims or len(in_dims) != len(perm):
            continue
        if any(d is None for d in in_dims[1:]):
            continue
        k = int(np.prod(in_dims[1:]))
        weights = flatten_weight_users(g, flat, k, gemm_ok=False)
        if not weights:
            continue
        # Row p of the transposed flatten holds the element at untransposed flat index order[p].
        untransposed = np.arange(k).reshape(in_dims[1:])
        order = untransposed.transpose([p - 1 for p in perm[1:]]).reshape(-1)
        for mm, w in weights:
            permuted = np.empty_like(w)
            permuted[order] = w
            replace_weight(g, mm, permuted, "_nchw_rows")
        flat.input[0] = tr.input[0]
        changed = True
    return changed


# --------------------------------------------------------------------------------------------------
# Rewrite 3: MatMul(x, W) + b  ==>  Gemm(x, W, b) for rank-2 x
# --------------------------------------------------------------------------------------------------
def _matmul_add_to_gemm(g: OnnxGraph) -> bool:
    """One Gemm instead of two nodes; QDQ quantization of Gemm keeps the bias in int32 (QGemm)."""
    changed = False
    for mm in list(g.graph.node):
        if mm.op_type != "MatMul" or mm.input[1] not in g.inits:
            continue
        a_dims = g.shapes.get(mm.input[0])
        w = g.const(mm.input[1])
        if a_dims is None or len(a_dims) != 2 or w is None or w.ndim != 2 or w.dtype != np.float32:
            continue
        add = g.sole_consumer(mm.output[0])
        if add is None or add.op_type != "Add":
            continue
        other = add.input[1] if add.input[0] == mm.output[0] else add.input[0]
        bias = g.const(other)
        if bias is None or other not in g.inits or bias.dtype != np.float32:
            continue
        if bias.shape not in ((w.shape[1],), (1, w.shape[1])):
            continue
        bias_name = other
        if bias.ndim == 2:
            bias_name = other + "_vec"
            g.graph.initializer.append(numpy_helper.from_array(bias.reshape(-1), bias_name))
        gemm = helper.make_node(
            "Gemm",
            [mm.input[0], mm.input[1], bias_name],
            list(add.output),
            name=(mm.name or "gemm") + "_gemm",
        )
        mm.CopyFrom(gemm)
        g.graph.node.remove(add)
        changed = True
        g = OnnxGraph(g.model)  # indexes point at removed nodes now
    return changed


Rewrite = Callable[[OnnxGraph], bool]
# Rewrites for every variant (FP32, FP16 and the float graph INT8 is quantized from).
REWRITES: tuple[tuple[str, Rewrite], ...] = (
    ("constant-flatten", _constant_flatten),
    ("fold-transpose-into-matmul", _fold_transpose_into_matmul),
    ("matmul-add-to-gemm", _matmul_add_to_gemm),
)


def apply_rewrites(
    model: onnx.ModelProto, rewrites: tuple[tuple[str, Rewrite], ...], wanted: list[str]
) -> tuple[onnx.ModelProto, list[str]]:
    """Run the `wanted` rewrites of `rewrites` in order on a copy of `model`; (copy, names applied), or
    (`model` itself, []) when none matched."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    applied: list[str] = []
    for name, fn in rewrites:
        if name in wanted and fn(OnnxGraph(work)):
            applied.append(name)
            remove_dead(work)
    if not applied:
        return model, []
    onnx.checker.check_model(work)
    return work, applied


def optimize_graph(
    model: onnx.ModelProto, *, nchw: bool = False, rewrites: tuple[str, ...] | None = None
) -> tuple[onnx.ModelProto, list[str]]:
    """Return (rewritten copy of `model`, names of the rewrites that applied).

    `nchw` says the graph input is NCHW (export --nchw). The rewrites here work on the classifier
    head and on the first conv whichever way the input is laid out, and never change the graph's
    input/output signature, so both layouts take the same path.
    `rewrites` picks a subset of REWRITES by name (default: all). A model none of them matches comes
    back unchanged (the same object) with an empty list.
    """
    del nchw  # accepted for the export contract; no rewrite depends on the input layout
    names = [n for n, _ in REWRITES]
    wanted = names if rewrites is None else list(rewrites)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise EdgecnnError(f"unknown graph rewrite(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return apply_rewrites(model, REWRITES, wanted)
