"""Names in a converted graph: the contract's input/output names, a dynamic batch dimension called
`batch`, and short tensor/weight names instead of TensorFlow's scoped ones."""

from __future__ import annotations

from typing import Any

from edgecnn.core.metadata import INPUT_NAME, OUTPUT_NAME

BATCH_DIM = "batch"


def rename_io(model: Any, output_name: str = OUTPUT_NAME) -> None:
    """Give the graph's single input/output the contract names (keras' exporter uses its own)."""
    graph = model.graph
    renames = {graph.input[0].name: INPUT_NAME, graph.output[0].name: output_name}
    for old, new in list(renames.items()):
        if old == new:
            del renames[old]
    if not renames:
        return
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name in renames:
            vi.name = renames[vi.name]


def name_batch_dim(model: Any) -> None:
    """Name the dynamic batch dimension `batch` everywhere (tf2onnx writes e.g. `unk__48`)."""
    graph = model.graph
    old = graph.input[0].type.tensor_type.shape.dim[0]
    old_param = old.dim_param if old.HasField("dim_param") else None
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            continue
        first = dims[0]
        if vi in graph.input or vi in graph.output or (old_param and first.dim_param == old_param):
            if not first.HasField("dim_value") or first.dim_value in (0, -1):
                first.dim_param = BATCH_DIM


def tidy_names(model: Any) -> int:
    """Shorten tf2onnx's TensorFlow-style names (`model_1/conv2d_1/convolution/ReadVariableOp:0`).

    Weights become `<layer>.weight` / `<layer>.bias`, other names lose the model prefix and `:0`.
    Names are stored once per use and again for every Q/DQ node quantization adds, so on a small CNN
    they are ~10% of an INT8 file; shorter names also read better in Netron and in the worst-layer
    report. Graph input/output names are kept. Returns how many names changed.
    """
    graph = model.graph
    keep = {vi.name for vi in graph.input} | {vi.name for vi in graph.output}
    node_names = [n.name for n in graph.node if n.name]
    firsts = {name.split("/", 1)[0] for name in node_names}
    prefix = next(iter(firsts)) + "/" if len(firsts) == 1 and all("/" in n for n in node_names) else ""

    def short(name: str) -> str:
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
        return name[:-2] if name.endswith(":0") else name

    renames: dict[str, str] = {}
    used = set(keep)

    def claim(old: str, new: str) -> None:
        if old in keep or old in renames:
            return
        candidate, i = new, 1
        while candidate in used:
            i += 1
            candidate = f"{new}_{i}"
        used.add(candidate)
        renames[old] = candidate

    inits = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type in ("Conv", "MatMul", "Gemm"):
            layer = short(node.name).split("/", 1)[0] if node.name else ""
            for idx, role in ((1, "weight"), (2, "bias")):
                if layer and len(node.input) > idx and node.input[idx] in inits:
                    claim(node.input[idx], f"{layer}.{role}")
    tensors = [t.name for t in graph.initializer]
    tensors += [name for node in graph.node for name in list(node.input) + list(node.output) if name]
    for name in tensors:
        claim(name, short(name))
    renames = {k: v for k, v in renames.items() if k != v}
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
        if node.name:
            node.name = short(node.name)
    for t in graph.initializer:
        t.name = renames.get(t.name, t.name)
    for vi in graph.value_info:
        vi.name = renames.get(vi.name, vi.name)
    return len(renames)
