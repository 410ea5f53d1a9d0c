"""Where the time goes, for `make bench-peers`: the INT8 model cut after each stage, for both runtimes.

TFLite's Python interpreter has no per-op profiler and ORT's profiler slows every node it times, so
both runtimes are measured the same way: the same Keras model is cut after each stage (conv+pool
block, dense layer), the TFLite INT8 cut is converted with the same calibration images and int8
output, and the ONNX INT8 cut is extracted from edgecnn's INT8 export at the quantized tensor that
ends the same layer, in NHWC like Keras. So both cuts end on the layer's int8 tensor, with no
dequantize or layout change the full model would not run. The cuts run unprofiled in the same
interleaved rounds; a stage's time is the difference between consecutive cumulative medians.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STAGE_LAYER_TYPES = ("MaxPooling2D", "Dense")


def stage_layers(model: Any) -> list[str]:
    """Layer names that end a stage: every pooling layer, every Dense but the output layer, and a
    convolution that no pooling follows. The last stage is the whole model."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    names = []
    for i, layer in enumerate(layers[:-1]):
        kind = type(layer).__name__
        nxt = type(layers[i + 1]).__name__
        if kind in STAGE_LAYER_TYPES or (kind == "Conv2D" and nxt != "MaxPooling2D"):
            names.append(layer.name)
    return names


def onnx_tensor_ending(graph: Any, layer: str) -> str:
    """The tensor of a tf2onnx-converted graph that ends Keras layer `layer`: the last node output
    under the layer's name scope (`<layer>_1/`), its quantized (int8) form when the layer has one."""
    outputs = [o for node in graph.node for o in node.output if o.startswith(f"{layer}_1/")]
    if not outputs:
        raise ValueError(f"no tensor of layer {layer!r} in the ONNX graph")
    quantized = [o for o in outputs if o.endswith("_QuantizeLinear_Output")]
    return (quantized or outputs)[-1]


def cut_onnx(source: Path, tensor: str, out: Path, to_channels_last: bool = False) -> Path:
    """`source` with `tensor` as its only output and every node it does not need removed.

    `to_channels_last` ends the cut with a Transpose to NHWC, the layout of the Keras (and TFLite)
    tensor: ORT runs its int8 convolutions in NHWC, so an NCHW output would make it transpose back and
    bill a layout change the full model never pays."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(source))
    graph = model.graph
    needed = {tensor}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    graph.ClearField("node")
    graph.node.extend(keep)
    inits = [t for t in graph.initializer if t.name in needed]
    graph.ClearField("initializer")
    graph.initializer.extend(inits)
    # A QuantizeLinear's output has its zero point's type (uint8 here); anything else is float32.
    elem_type = TensorProto.FLOAT
    for node in keep:
        if node.op_type == "QuantizeLinear" and node.output[0] == tensor and len(node.input) > 2:
            zero_point = next(t for t in graph.initializer if t.name == node.input[2])
            elem_type = zero_point.data_type
    graph.ClearField("output")
    if to_channels_last:
        graph.node.append(helper.make_node("Transpose", [tensor], [tensor + "_cut_nhwc"], perm=[0, 2, 3, 1]))
        tensor += "_cut_nhwc"
    graph.output.append(helper.make_tensor_value_info(tensor, elem_type, None))
    graph.ClearField("value_info")
    onnx.save(model, str(out))
    return out


def build_cuts(
    keras_model: Any, int8_onnx: Path, calibration: Any, out_dir: Path, log: Any
) -> list[dict[str, str]]:
    """Cumulative cuts [{"stage", "tflite", "onnx"}], cached in `out_dir`; the last is the full model."""
    import onnx
    import peers_tflite as peers

    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = onnx.load(str(int8_onnx)).graph
    cuts = []
    for layer in stage_layers(keras_model):
        tfl = out_dir / f"{layer}.int8.tflite"
        onx = out_dir / f"{layer}.int8.onnx"
        if not tfl.exists():
            log(f"  cut after {layer}: TFLite INT8 conversion")
            sub = keras.Model(keras_model.inputs, keras_model.get_layer(layer).output)
            tfl.write_bytes(peers.tflite_bytes(sub, calibration, int8_output=True))
        if not onx.exists():
            tensor = onnx_tensor_ending(graph, layer)
            nchw = len(keras_model.get_layer(layer).output.shape) == 4 and "_nhwc" not in tensor
            cut_onnx(int8_onnx, tensor, onx, to_channels_last=nchw)
        cuts.append({"stage": layer, "tflite": str(tfl), "onnx": str(onx)})
    return cuts


def stage_rows(cumulative: dict[str, dict[str, float]], stages: list[str]) -> list[dict[str, Any]]:
    """Per stage, each runtime's time as the difference of consecutive cumulative medians (ms)."""
    rows = []
    prev = {"tflite": 0.0, "onnx": 0.0}
    for stage in stages:
        cur = cumulative[stage]
        row = {"stage": stage}
        for rt in ("tflite", "onnx"):
            row[f"{rt}_ms"] = cur[rt] - prev[rt]
            row[f"{rt}_cumulative_ms"] = cur[rt]
        row["onnx_over_tflite"] = row["onnx_ms"] / row["tflite_ms"] if row["tflite_ms"] > 0 else None
        rows.append(row)
        prev = cur
    return rows
