"""Which layers INT8 hurts most: per-channel signal-to-quantization-noise ratio of every quantized
activation against its float twin (ONNX Runtime's QDQ debugging tools), mapped back to the
Conv/MatMul/Gemm node that can be kept in float."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.quiet import quiet_libraries
from edgecnn.exporting.quantization.calibration import make_data_reader


def quantizable_nodes(model_path: Path) -> list[str]:
    """Names of the compute nodes (Conv, MatMul, Gemm) in graph order: the layers INT8 changes most."""
    import onnx

    model = onnx.load(str(model_path))
    return [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and n.name]


def channel_sqnr(float_values: Any, qdq_values: Any) -> float:
    """Mean over channels (axis 1) of the signal-to-quantization-noise ratio in dB.

    ORT's default compares whole tensors, so one large channel hides that the small ones were
    rounded to zero by a shared per-tensor scale, which is how outlier activations ruin INT8. Per
    channel, those zeroed channels score ~0 dB and the layer ranks as the worst, as it should.
    Channels that are zero in float (dead ReLUs) carry no signal and are skipped.
    """
    x = np.concatenate([np.asarray(v, dtype=np.float64) for v in float_values])
    y = np.concatenate([np.asarray(v, dtype=np.float64) for v in qdq_values])
    if x.ndim < 2:
        x, y = x.reshape(1, -1), y.reshape(1, -1)
    x = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    y = np.moveaxis(y, 1, 0).reshape(y.shape[1], -1)
    signal = np.linalg.norm(x, axis=1)
    noise = np.linalg.norm(x - y, axis=1)
    live = signal > 1e-12
    if not np.any(live):
        return float("inf")
    ratio = signal[live] / np.maximum(noise[live], signal[live] * 1e-5)  # cap at 100 dB
    return float(np.mean(20.0 * np.log10(ratio)))


def worst_quantized_nodes(
    float_path: Path,
    qdq_path: Path,
    images: np.ndarray,
    input_name: str,
    work_dir: Path,
    limit: int = 3,
) -> list[tuple[str, float]]:
    """Nodes whose outputs lose the most signal to quantization (lowest SQNR in dB), worst first.

    Uses ORT's qdq_loss_debug: both graphs are augmented to output every activation, run on the same
    real images, and each QDQ-wrapped activation is compared with its float twin. The producing node
    of a bad activation is the one to keep in float.
    """
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as dbg

    aug_float = work_dir / "debug.float.onnx"
    aug_qdq = work_dir / "debug.qdq.onnx"
    with quiet_libraries():
        dbg.modify_model_output_intermediate_tensors(str(float_path), str(aug_float))
        dbg.modify_model_output_intermediate_tensors(str(qdq_path), str(aug_qdq))
        float_acts = dbg.collect_activations(
            str(aug_float),
            make_data_reader(images, input_name, 32),
            execution_providers=["CPUExecutionProvider"],
        )
        qdq_acts = dbg.collect_activations(
            str(aug_qdq),
            make_data_reader(images, input_name, 32),
            execution_providers=["CPUExecutionProvider"],
        )
        matched = dbg.create_activation_matching(qdq_acts, float_acts)
        errors = dbg.compute_activation_error(matched, err_func=channel_sqnr)
    nodes = onnx.load(str(float_path)).graph.node
    producer = {out: n for n in nodes for out in n.output}
    compute = set(quantizable_nodes(float_path))

    def compute_node_of(tensor: str) -> str | None:
        # QDQ sits after the activation (Conv -> Relu -> QDQ) or a pooling/reshape: walk back to
        # the Conv/MatMul/Gemm that produced the values, which is what can be kept in float.
        for _ in range(4):
            node = producer.get(tensor)
            if node is None:
                return None
            if node.name in compute:
                return node.name
            if not node.input:
                return None
            tensor = node.input[0]
        return None

    scored: dict[str, float] = {}
    for tensor, err in errors.items():
        name = compute_node_of(tensor)
        sqnr = err.get("xmodel_err")
        if name is None or sqnr is None:
            continue
        scored[name] = min(float(sqnr), scored.get(name, float("inf")))
    return sorted(scored.items(), key=lambda kv: kv[1])[:limit]


def worst_layers_report(
    float_path: Path, qdq_path: Path, images: np.ndarray, work_dir: Path, limit: int = 5
) -> tuple[list[dict[str, Any]], str | None]:
    """The per-layer quantization error report of an INT8 file (like ai-edge-quantizer's and
    Polygraphy's debug reports): the `limit` compute layers whose outputs lose the most signal, worst
    first, as [{"layer", "sqnr_db"}]; and why there is none, when ORT's debug tools could not tell."""
    from edgecnn.core.metadata import INPUT_NAME

    try:
        worst = worst_quantized_nodes(float_path, qdq_path, images, INPUT_NAME, work_dir, limit)
    except Exception as exc:  # noqa: BLE001 - a debug report: never the reason an export fails
        return [], f"per-layer SQNR report failed: {str(exc)[:160]}"
    if not worst:
        return [], "per-layer SQNR report: no quantized layer matched its float twin"
    return [{"layer": name, "sqnr_db": round(sqnr, 2)} for name, sqnr in worst], None
