"""Export-time graph rewrites that remove work tf2onnx leaves in a converted Keras CNN.

tf2onnx keeps Keras' NHWC semantics on an NCHW graph: before Flatten it transposes the feature map
back to NHWC, and it may compute the Flatten target shape at run time (Shape -> Gather -> Cast ->
Slice -> Concat -> Cast -> Reshape). `optimize_graph` (every variant) turns that Reshape into a
Flatten, folds the transpose into the next MatMul's weight rows so no transpose runs, and fuses
MatMul + Add into Gemm (one QGemm in INT8 instead of QLinearMatMul + QLinearAdd).

`prepare_for_int8` shapes the float graph handed to static quantization for ONNX Runtime's CPU
int8 kernels (measured on keras-convnet/tf1-cnn, see int8_float_nodes and _nhwc_flatten): the
one-input-channel stem stays float, and the flatten goes back to NHWC order, because ORT runs int8
convs in NHWC.

Every rewrite recognises one pattern completely (ops, attributes, static shapes, sole consumers) or
leaves the graph alone, and is exact in float; the export parity gate checks the result numerically.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# Ops that may appear in a subgraph computing a Reshape target from tensor shapes.
_SHAPE_OPS = frozenset(
    {"Shape", "Gather", "Cast", "Slice", "Concat", "Unsqueeze", "Squeeze", "Constant", "Identity",
     "Mul", "Div", "Add", "Sub", "ReduceProd", "Reshape"}
)  # fmt: skip


class _Graph:
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
        self.shapes = _static_shapes(model)

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


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
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


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _remove_dead(model: onnx.ModelProto) -> None:
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


# --------------------------------------------------------------------------------------------------
# Rewrite 1: dynamic flatten (Shape/Gather/.../Concat -> Reshape) -> Flatten(axis=1)
# --------------------------------------------------------------------------------------------------
def _shape_subgraph(g: _Graph, name: str) -> list[onnx.NodeProto] | None:
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
    g: _Graph, nodes: list[onnx.NodeProto], target: str, feeds: dict[str, np.ndarray]
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


def _constant_flatten(g: _Graph) -> bool:
    """Reshape(x, shape computed from Shape(x)) that always yields [batch, prod(rest)] -> Flatten(axis=1)."""
    changed = False
    for node in list(g.graph.node):
        if node.op_type != "Reshape" or len(node.input) < 2 or g.const(node.input[1]) is not None:
            continue
        if int(_attr(node, "allowzero", 0) or 0) != 0:
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
def _flatten_input(g: _Graph, node: onnx.NodeProto) -> str | None:
    """The input of a node that flattens [N, ...] to [N, K] exactly; None for anything else."""
    if node.op_type == "Flatten" and int(_attr(node, "axis", 1)) == 1:
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


def _fold_transpose_into_matmul(g: _Graph) -> bool:
    changed = False
    for flat in list(g.graph.node):
        src = _flatten_input(g, flat)
        if src is None:
            continue
        tr = g.producer.get(src)
        if tr is None or tr.op_type != "Transpose" or g.sole_consumer(src) is not flat:
            continue
        perm = list(_attr(tr, "perm", []) or [])
        in_dims = g.shapes.get(tr.input[0])
        if not perm or perm[0] != 0 or not in_dims or len(in_dims) != len(perm):
            continue
        if any(d is None for d in in_dims[1:]):
            continue
        users = g.consumers.get(flat.output[0], [])
        if not users or flat.output[0] in g.graph_outputs:
            continue
        k = int(np.prod(in_dims[1:]))
        weights = []
        for mm in users:
            w = g.const(mm.input[1]) if mm.op_type == "MatMul" and mm.input[0] == flat.output[0] else None
            if w is None or w.ndim != 2 or w.shape[0] != k or mm.input[1] not in g.inits:
                weights = []
                break
            weights.append((mm, w))
        if not weights:
            continue
        # Row p of the transposed flatten holds the element at untransposed flat index order[p].
        untransposed = np.arange(k).reshape(in_dims[1:])
        order = untransposed.transpose([p - 1 for p in perm[1:]]).reshape(-1)
        for mm, w in weights:
            permuted = np.empty_like(w)
            permuted[order] = w
            name = mm.input[1] + "_nchw_rows"
            g.graph.initializer.append(numpy_helper.from_array(permuted, name))
            mm.input[1] = name
        flat.input[0] = tr.input[0]
        changed = True
    return changed


# --------------------------------------------------------------------------------------------------
# Rewrite 3: MatMul(x, W) + b  ==>  Gemm(x, W, b) for rank-2 x
# --------------------------------------------------------------------------------------------------
def _matmul_add_to_gemm(g: _Graph) -> bool:
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
        g = _Graph(g.model)  # indexes point at removed nodes now
    return changed


# --------------------------------------------------------------------------------------------------
# INT8 rewrite: first Conv(1 input channel) -> Relu -> MaxPool  ==>  Conv -> MaxPool -> Relu
# --------------------------------------------------------------------------------------------------
def _first_conv_chain(g: _Graph) -> tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto] | None:
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
            or int(_attr(conv, "group", 1)) != 1
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


def _pool_before_relu(g: _Graph) -> bool:
    """max and relu commute, so this is exact; it matters for INT8, see int8_float_nodes()."""
    chain = _first_conv_chain(g)
    if chain is None:
        return False
    conv, relu, pool = chain
    if g.sole_consumer(conv.output[0]) is not relu:
        return False  # already pool-first
    if len(pool.output) != 1 or int(_attr(pool, "storage_order", 0) or 0) != 0:
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
    g = _Graph(model)
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
def _nhwc_flatten(g: _Graph, keep_float: frozenset[str] = frozenset()) -> bool:
    """The inverse of fold-transpose-into-matmul, for the graph INT8 is quantized from.

    ONNX Runtime runs int8 convs in NHWC and wraps them in NCHW<->NHWC transposes, cancelling pairs.
    With an NCHW flatten, one transpose back to NCHW remains before the Flatten; with an explicit
    NHWC transpose there it cancels, so no transpose runs at all. Skipped when the tensor comes from
    a node that stays float (then ORT keeps it NCHW and the transpose would be real work).
    """
    for flat in list(g.graph.node):
        src = _flatten_input(g, flat)
        dims = g.shapes.get(src) if src else None
        if src is None or not dims or len(dims) != 4 or any(d is None for d in dims[1:]):
            continue
        prod = g.producer.get(src)
        if prod is None or prod.op_type == "Transpose" or prod.name in keep_float:
            continue
        users = g.consumers.get(flat.output[0], [])
        if not users or flat.output[0] in g.graph_outputs:
            continue
        k = int(np.prod(dims[1:]))
        weights = []
        for mm in users:
            ok_op = mm.op_type == "MatMul" or (
                mm.op_type == "Gemm" and int(_attr(mm, "transA", 0)) == 0 and int(_attr(mm, "transB", 0)) == 0
            )
            w = g.const(mm.input[1]) if ok_op and mm.input[0] == flat.output[0] else None
            if w is None or w.ndim != 2 or w.shape[0] != k or mm.input[1] not in g.inits:
                weights = []
                break
            weights.append((mm, w))
        if not weights:
            continue
        # Row p of the NHWC flatten holds the element at NCHW flat index order[p].
        order = np.arange(k).reshape(dims[1:]).transpose(1, 2, 0).reshape(-1)
        for mm, w in weights:
            name = mm.input[1] + "_nhwc_rows"
            g.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w[order]), name))
            mm.input[1] = name
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


Rewrite = Callable[[_Graph], bool]
# Rewrites for every variant (FP32, FP16 and the float graph INT8 is quantized from).
REWRITES: tuple[tuple[str, Rewrite], ...] = (
    ("constant-flatten", _constant_flatten),
    ("fold-transpose-into-matmul", _fold_transpose_into_matmul),
    ("matmul-add-to-gemm", _matmul_add_to_gemm),
)
# Only for the graph handed to static INT8 quantization: in FP32 it costs the Conv+Relu fusion (~2%).
INT8_REWRITES: tuple[tuple[str, Rewrite], ...] = (("pool-before-relu", _pool_before_relu),)


def _apply(
    model: onnx.ModelProto, rewrites: tuple[tuple[str, Rewrite], ...], wanted: list[str]
) -> tuple[onnx.ModelProto, list[str]]:
    work = onnx.ModelProto()
    work.CopyFrom(model)
    applied: list[str] = []
    for name, fn in rewrites:
        if name in wanted and fn(_Graph(work)):
            applied.append(name)
            _remove_dead(work)
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
        from edgecnn.core.errors import EdgecnnError

        raise EdgecnnError(f"unknown graph rewrite(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return _apply(model, REWRITES, wanted)


def prepare_for_int8(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str], list[str]]:
    """The float graph to give quantize_static, the rewrites applied, and nodes_to_exclude for it.

    Call it on optimize_graph's output. The returned graph computes exactly what `model` does (the
    rewrites are exact in float). Pass the third element as quantize_static(nodes_to_exclude=...):
    see int8_float_nodes() for why those nodes stay float.
    """
    work, applied = _apply(model, INT8_REWRITES, [n for n, _ in INT8_REWRITES])
    keep_float = int8_float_nodes(work)
    frozen = frozenset(keep_float)

    def nhwc_flatten_all(g: _Graph) -> bool:
        changed = False
        while _nhwc_flatten(g, frozen):
            changed = True
            g = _Graph(g.model)
        return changed

    work, more = _apply(work, (("nhwc-flatten", nhwc_flatten_all),), ["nhwc-flatten"])
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
    g = _Graph(model)
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
        _remove_dead(model)
    return changed
