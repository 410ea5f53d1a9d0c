"""OpenVINO as a backend: the same .onnx files through its CPU plugin, with an inference-precision hint
(fp32, or bf16/fp16 where the CPU runs them natively; f32/bf16/f16 in OpenVINO's terms) and per-layer
execution precision as placement.

Optional extra: pip install 'edgecnn[openvino]'."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import LOGITS_NAME, OUTPUT_NAME, onnx_props
from edgecnn.core.text import one_line
from edgecnn.runtime.backends.base import Backend, OpenedModel, static_dims, zeros_for
from edgecnn.runtime.session_config import OPENVINO_PRECISIONS, SessionConfig

# OpenVINO's element type names (as str(ov.Type) prints them) -> its short names (placement's terms).
PRECISION_NAMES = {
    "f32": "f32",
    "float32": "f32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "f16": "f16",
    "float16": "f16",
}
NOT_EXECUTED = ("Input", "Output", "Const", "Parameter", "Result", "Constant")
METHOD = "openvino compiled_model.get_runtime_model(): runtimePrecision of each executed layer"


@functools.lru_cache(maxsize=1)
def core() -> Any:
    import openvino as ov

    return ov.Core()


def _precision_name(value: Any) -> str:
    text = str(getattr(value, "get_type_name", lambda: value)()).lower()
    return PRECISION_NAMES.get(text, text)


class OpenVinoModel(OpenedModel):
    def __init__(self, path: Path, compiled: Any, config: SessionConfig, metadata: dict[str, str]) -> None:
        import openvino as ov

        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.runtime = "openvino"
        self.runtime_version = ov.get_version()
        self.device = "openvino:CPU"
        # The hint in OpenVINO's terms (f32, bf16, f16), and as SessionConfig names it (fp32, bf16, fp16).
        self.hint = _precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.precision = {ov: ours for ours, ov in OPENVINO_PRECISIONS.items()}.get(self.hint, self.hint)
        self.threads = config.threads
        self.metadata = metadata
        if len(compiled.inputs) != 1:
            raise EdgecnnError(f"{path} takes {len(compiled.inputs)} inputs; edgecnn feeds one image input")
        graph_in = compiled.inputs[0]
        self.input_name = graph_in.get_any_name()
        self.input_shape = static_dims(_dims(graph_in.get_partial_shape()))
        names = [o.get_any_name() for o in compiled.outputs]
        named = [n for n in (OUTPUT_NAME, LOGITS_NAME) if n in names]
        self.output = compiled.outputs[names.index(named[0]) if named else 0]
        self.output_name = self.output.get_any_name()
        self.output_shape = static_dims(_dims(self.output.get_partial_shape()))

    def run(self, batch: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(result[self.output], dtype=np.float32)  # a copy: the request reuses its buffer

    def runner(self, batch: np.ndarray) -> Callable[[], Any]:
        import openvino as ov

        bound = np.ascontiguousarray(batch, dtype=np.float32)
        self.request.set_input_tensor(ov.Tensor(bound, shared_memory=True))
        self._bound = bound  # the tensor shares this array's memory: keep it alive
        return self.request.infer

    def placement(self) -> dict[str, Any]:
        by_precision: Counter[str] = Counter()
        types: dict[str, Counter[str]] = {}
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            layer_type = str(info["layerType"].astype(str)) if "layerType" in info else op.get_type_name()
            if layer_type in NOT_EXECUTED:
                continue
            precision = str(info["runtimePrecision"].astype(str)) if "runtimePrecision" in info else "?"
            precision = PRECISION_NAMES.get(precision.lower(), precision.lower())
            by_precision[precision] += 1
            types.setdefault(precision, Counter())[layer_type] += 1
        total = sum(by_precision.values())
        order = [p for p, _ in by_precision.most_common()]
        summary = ", ".join(
            (f"{by_precision[p]} of {total} layers in {p}" if i == 0 else f"{by_precision[p]} in {p}")
            for i, p in enumerate(order)
        )
        return {
            "layers_total": total,
            "by_precision": {p: by_precision[p] for p in order},
            "by_precision_layer_types": {p: dict(types[p].most_common()) for p in order},
            "inference_precision_hint": self.hint,
            "summary": summary or "no executed layers",
            "method": METHOD,
        }


def _dims(shape: Any) -> list[int | None]:
    return [d.get_length() if d.is_static else None for d in shape]


class OpenVinoBackend(Backend):
    name = "openvino"
    title = "OpenVINO"
    module = "openvino"
    extra = "openvino"
    file_suffixes = (".onnx",)

    def version(self) -> str:
        import openvino as ov

        return str(ov.get_version())

    def devices(self) -> list[str]:
        ov_core = core()
        return [
            f"{d} ({one_line(ov_core.get_property(d, 'FULL_DEVICE_NAME'), 80)})"
            for d in ov_core.available_devices
        ]

    def open(self, path: Path, config: SessionConfig, *, allow_cpu_nodes: bool = False) -> OpenVinoModel:
        from edgecnn.runtime.sessions import check_model_file

        check_model_file(path)
        metadata = onnx_props(path)
        asked = config.openvino_precision  # f32 unless asked (SessionConfig maps and checks it)
        properties: dict[str, Any] = {"INFERENCE_PRECISION_HINT": asked, "PERFORMANCE_HINT": "LATENCY"}
        if config.threads:
            properties["INFERENCE_NUM_THREADS"] = config.threads
        try:
            compiled = core().compile_model(core().read_model(str(path)), "CPU", properties)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError with its C++ message
            raise EdgecnnError(f"OpenVINO could not load {path}: {one_line(exc, 300)}") from None
        model = OpenVinoModel(path, compiled, config, metadata)
        if model.hint != asked:
            raise EdgecnnError(
                f"OpenVINO compiled {path.name} at {model.hint} when {asked} was asked; no result is "
                "reported for a precision that did not run"
            )
        try:
            model.run(zeros_for(model.input_shape))
        except Exception as exc:  # noqa: BLE001
            raise EdgecnnError(f"OpenVINO failed to run {path}: {one_line(exc, 300)}") from None
        return model
