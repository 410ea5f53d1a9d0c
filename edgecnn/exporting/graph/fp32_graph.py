"""The FP32 ONNX graph of a Keras model: converted, simplified, rewritten, named and validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.text import one_line
from edgecnn.exporting.export_config import ExportConfig
from edgecnn.exporting.graph.convert import convert
from edgecnn.exporting.graph.names import name_batch_dim, tidy_names
from edgecnn.exporting.graph.simplify import simplify


@dataclass(frozen=True)
class Fp32Graph:
    model: Any  # onnx.ModelProto, without edgecnn metadata yet
    route: str  # the converter route that ran
    node_counts: dict[str, int]  # converted -> simplified -> final
    rewrites: tuple[str, ...]  # edgecnn graph rewrites that applied
    warnings: tuple[str, ...]


def build_fp32_graph(
    config: ExportConfig, keras_model: Any, input_shape: tuple[int, int, int], output_name: str
) -> Fp32Graph:
    """Convert (graph output named `output_name`: the output kind), then simplify (onnxslim) and apply
    edgecnn's rewrites as `config` asks; the batch dimension is named again after them because both
    may rebuild the graph's value infos."""
    import onnx

    onnx_model, route, warnings = convert(keras_model, input_shape, config.opset, config.nchw, output_name)
    name_batch_dim(onnx_model)
    node_counts = {"converted": len(onnx_model.graph.node)}
    if config.simplify:
        onnx_model, why = simplify(onnx_model)
        if why:
            warnings.append(why)
    node_counts["simplified"] = len(onnx_model.graph.node)
    rewrites: list[str] = []
    if config.graph_rewrites:
        from edgecnn.exporting.graph.rewrites import optimize_graph

        onnx_model, rewrites = optimize_graph(onnx_model, nchw=config.nchw)
    node_counts["final"] = len(onnx_model.graph.node)
    name_batch_dim(onnx_model)
    tidy_names(onnx_model)
    try:
        onnx.checker.check_model(onnx_model)
    except Exception as exc:  # noqa: BLE001
        raise EdgecnnError(f"the converted graph is not valid ONNX: {one_line(exc)}") from None
    return Fp32Graph(onnx_model, route, node_counts, tuple(rewrites), tuple(warnings))
