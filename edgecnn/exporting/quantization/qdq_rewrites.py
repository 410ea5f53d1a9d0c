"""Graph rewrites around static INT8 quantization, for ONNX Runtime's CPU int8 kernels.

Before quantization, `prepare_for_int8` shapes the float graph handed to quantize_static (measured on
keras-convnet/tf1-cnn, see int8_float_nodes and _nhwc_flatten): the one-input-channel stem stays
float, and the flatten goes back to NHWC order, because ORT runs int8 convs in NHWC. After it,
`float_logits` lets the last Gemm/MatMul hand float logits to Softmax. Like `rewrites`, each one
matches a pattern completely or leaves the graph alone, and is exact in float.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import helper

from edgecnn.exporting.graph.onnx_graph import (
    OnnxGraph,
    attr,
    flatten_input,
    flatten_weight_users,
    remove_dead,
    replace_weight,
)
from edgecnn.exporting.graph.rewrites import Rewrite, apply_rewrites


# --------------------------------------------------------------------------------------------------
# INT8 rewrite: first Conv(1 input channel) -> Relu -> MaxPool  ==>  Conv -> MaxPool -> Relu
# --------------------------------------------------------------------------------------------------
def _first_conv_chain(g: OnnxGraph) -> tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto] | None:
    """(Conv, Relu, MaxPool) right after the graph input, when the conv has one input channel."""
    graph_inputs = {i.name for i in g.graph.input} - set(g.inits)
    for conv in g.graph.node:
        if conv.op_type != "Conv":
            continue
        src = conv.input[0]
        # Only the input-adjacent conv: fed by the graph input, directly or through one layout op.
        prod = g.producer.get(src)
        fed_by_input = src in graph_inputs or (
            prod is not None and prod.op_type in ("Reshape", "Transpose") and prod.input[0] in graph_inputs
        )
        w = g.const(conv.input[1])
        if (
            not fed_by_input
            or w is None
            or w.ndim != 4
            or w.shape[1] != 1
            or int(attr(conv, "group", 1)) != 1
        ):
            return None
        first = g.sole_consumer(conv.output[0])
        second = g.sole_consumer(first.output[0]) if first is not None else None
        if first is None or second is None:
            return None
        if first.op_type == "Relu" and second.op_type == "MaxPool":
            return conv, first, second
        if first.op_type == "MaxPool" and second.op_type == "Relu":
            return conv, second, first
        return None
    return None


def _pool_before_relu(g: OnnxGraph) -> bool:
    """max and relu commute, so this is exact; it matters for INT8, see int8_float_nodes()."""
    chain = _first_conv_chain(g)
    if chain is None:
        return False
    conv, relu, pool = chain
    if g.sole_consumer(conv.output[0]) is not relu:
        return False  # already pool-first
    if len(pool.output) != 1 or int(attr(pool, "storage_order", 0) or 0) != 0:
        return False  # an Indices output would change meaning
    # The pooled pre-activation tensor gets a fresh name; the old Relu output name goes away with
    # its (now wrong) value_info, and the block's output keeps its name and shape.
    final = pool.output[0]
    pooled = conv.output[0] + "_pooled"
    pool.input[0] = conv.output[0]
    pool.output[0] = pooled
    relu.input[0] = pooled
    relu.output[0] = final
    # Keep topological order: the Relu now runs after the MaxPool.
    nodes = [n for n in g.graph.node if n is not relu]
    nodes.insert(next(i for i, n in enumerate(nodes) if n is pool) + 1, relu)
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    return True


def int8_float_nodes(model: onnx.ModelProto) -> list[str]:
    """Node names to pass as quantize_static(nodes_to_exclude=...) after the pool-before-relu rewrite.

    A one-input-channel 3x3 conv has a 9-deep reduction, which ONNX Runtime's int8 conv kernels run
    about 4x slower than its float NCHWc kernel. Keeping Conv -> MaxPool -> Relu float puts the first
    QuantizeLinear after the Relu, where ONNX Runtime's QDQ propagation cannot move it above the
    MaxPool (Relu does not propagate), so the int8 part starts at the second conv in NHWC.
    Empty when the model does not have that shape.
    """
    g = OnnxGraph(model)
    chain = _first_conv_chain(g)
    if chain is None:
        return []
    conv, relu, pool = chain
    if g.sole_consumer(conv.output[0]) is not pool:
        return []  # pool-before-relu was not applied; excluding the conv alone is slower than none
    names = [n.name for n in (conv, pool, relu)]
    return names if all(names) else []  # unnamed nodes cannot be excluded by name


# --------------------------------------------------------------------------------------------------
# INT8 rewrite: Flatten(NCHW) -> Gemm/MatMul(W)  ==>  Transpose to NHWC -> Flatten -> Gemm/MatMul(W')
# --------------------------------------------------------------------------------------------------
def _nhwc_flatten(g: OnnxGraph, keep_float: frozenset[str] = frozenset()) -> bool:
    """The inverse of fold-transpose-into-matmul, for the graph INT8 is quantized from.

    ONNX Runtime runs int8 convs in NHWC and wraps them in NCHW<->NHWC transposes, cancelling pairs.
    With an NCHW flatten, one transpose back to NCHW remains before the Flatten; with an explicit
    NHWC transpose there it cancels, so no transpose runs at all. Skipped when the tensor comes from
    a node that stays float (then ORT keeps it NCHW and the transpose would be real work).
    """
    for flat in list(g.graph.node):
        src = flatten_input(g, flat)
        dims = g.shapes.get(src) if src else None
        if src is None or not dims or len(dims) != 4 or any(d is None for d in dims[1:]):
            continue
        prod = g.producer.get(src)
        if prod is None or prod.op_type == "Transpose" or prod.name in keep_float:
            continue
        k = int(np.prod(dims[1:]))
        weights = flatten_weight_users(g, flat, k, gemm_ok=True)
        if not weights:
            continue
        # Row p of the NHWC flatten holds the element at NCHW flat index order[p].
        order = np.arange(k).reshape(dims[1:]).transpose(1, 2, 0).reshape(-1)
        for mm, w in weights:
            replace_weight(g, mm, w[order], "_nhwc_rows")
        nhwc = src + "_nhwc"
        transpose = helper.make_node(
            "Transpose", [src], [nhwc], name=(flat.name or "flatten") + "_nhwc", perm=[0, 2, 3, 1]
        )
        flat.input[0] = nhwc  # a constant [-1, K] Reshape target stays valid for the NHWC tensor
        # Edit nodes before re-inserting: extend() copies them, so later edits would be lost.
        nodes = list(g.graph.node)
        nodes.insert(next(i for i, n in enumerate(nodes) if n is flat), transpose)
        del g.graph.node[:]
        g.graph.node.extend(nodes)
        return True  # node objects were replaced: the caller re-indexes and calls again
    return False


def _nhwc_flatten_all(keep_float: frozenset[str], g: OnnxGraph) -> bool:
    """_nhwc_flatten on every flatten, re-indexing the graph after each one."""
    changed = False
    while _nhwc_flatten(g, keep_float):
        changed = True
        g = OnnxGraph(g.model)
    return changed


# Only for the graph handed to static INT8 quantization: in FP32 it costs the Conv+Relu fusion (~2%).
INT8_REWRITES: tuple[tuple[str, Rewrite], ...] = (("pool-before-relu", _pool_before_relu),)


def prepare_for_int8(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str], list[str]]:
    """The float graph to give quantize_static, the rewrites applied, and nodes_to_exclude for it.

    Call it on optimize_graph's output. The returned graph computes exactly what `model` does (the
    rewrites are exact in float). Pass the third element as quantize_static(nodes_to_exclude=...):
    see int8_float_nodes() for why those nodes stay float.
    """
    work, applied = apply_rewrites(model, INT8_REWRITES, [n for n, _ in INT8_REWRITES])
    keep_float = int8_float_nodes(work)
    nhwc_flatten_all = functools.partial(_nhwc_flatten_all, frozenset(keep_float))
    work, more = apply_rewrites(work, (("nhwc-flatten", nhwc_flatten_all),), ["nhwc-flatten"])
    return work, applied + more, keep_float


# --------------------------------------------------------------------------------------------------
# After INT8 quantization: Gemm/MatMul -> Q -> DQ -> Softmax  ==>  Gemm/MatMul -> Softmax
# --------------------------------------------------------------------------------------------------
_FLOAT_OUT_PRODUCERS = frozenset({"Gemm", "MatMul"})


def float_logits(model: onnx.ModelProto, float_ops: tuple[str, ...] = ("Softmax",)) -> list[str]:
    """Drop the QuantizeLinear -> DequantizeLinear pair between the last Gemm/MatMul and a node
    that stays float (Softmax), in place; returns the names of the Gemm/MatMul nodes changed.

    ONNX Runtime fuses DQ -> Gemm with no Q after it into one QGemm with float output (MatMul: into
    MatMulIntegerToFloat), so the logits are never rounded to 8 bits and two nodes fewer run:
    measured 3.5-4% faster at batch 1 on keras-convnet and tf1-cnn (1 thread, interleaved), same
    at batch 64, accuracy the same or better. Only rewrites a pair whose tensors have no other user.
    """
    g = OnnxGraph(model)
    changed: list[str] = []
    for user in list(g.graph.node):
        if user.op_type not in float_ops or not user.input:
            continue
        dq = g.producer.get(user.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or g.sole_consumer(dq.output[0]) is not user:
            continue
        q = g.producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or g.sole_consumer(q.output[0]) is not dq:
            continue
        mm = g.producer.get(q.input[0])
        if mm is None or mm.op_type not in _FLOAT_OUT_PRODUCERS or g.sole_consumer(mm.output[0]) is not q:
            continue
        user.input[0] = mm.output[0]
        g.graph.node.remove(q)
        g.graph.node.remove(dq)
        changed.append(mm.name or mm.output[0])
    if changed:
        remove_dead(model)
    return changed


# --------------------------------------------------------------------------------------------------
# Per-ISA recipes (quantization.recipes): which convs stay float
# --------------------------------------------------------------------------------------------------
def depthwise_and_stem_convs(model_path: object, depthwise: bool, stem: bool) -> list[str]:
    """Names of the depthwise convs (group == output channels, one input channel per group) and/or the
    conv fed by the graph input (directly or through one Transpose/Reshape), for nodes_to_exclude."""
    g = OnnxGraph(onnx.load(str(model_path), load_external_data=False))
    graph_inputs = {i.name for i in g.graph.input} - set(g.inits)
    names: list[str] = []
    for conv in g.graph.node:
        if conv.op_type != "Conv" or not conv.name:
            continue
        w = g.const(conv.input[1])
        group = int(attr(conv, "group", 1))
        if (
            depthwise
            and w is not None
            and w.ndim == 4
            and group > 1
            and w.shape[1] == 1
            and group == w.shape[0]
        ):
            names.append(conv.name)
            continue
        prod = g.producer.get(conv.input[0])
        fed_by_input = conv.input[0] in graph_inputs or (
            prod is not None and prod.op_type in ("Reshape", "Transpose") and prod.input[0] in graph_inputs
        )
        if stem and fed_by_input:
            names.append(conv.name)
    return names
