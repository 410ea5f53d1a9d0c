"""ONNX Runtime as a backend: today's session code (providers, fallback off, the checked first run,
per-node placement from ORT's profiler, IO binding) behind the runtime interface."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import PREFIX
from edgecnn.runtime.backends.base import Backend, OpenedModel, static_dims
from edgecnn.runtime.checked_session import CheckedSession, open_checked
from edgecnn.runtime.inference import score_output_name
from edgecnn.runtime.io_binding import bind_io
from edgecnn.runtime.ort_library import available_providers, import_ort
from edgecnn.runtime.placement import zero_feeds
from edgecnn.runtime.session_config import SessionConfig


class OrtModel(OpenedModel):
    def __init__(self, path: Path, checked: CheckedSession, config: SessionConfig) -> None:
        self.checked = checked
        self.session = checked.session
        self.runtime = "ort"
        self.runtime_version = import_ort().__version__
        self.device = checked.provider
        # TensorRT builds its kernels at the precision asked; every other provider runs the file's own.
        self.precision = config.trt_precision if checked.provider == "TensorrtExecutionProvider" else None
        self.threads = config.threads
        self.device_id = config.device_id
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k: v for k, v in props.items() if k.startswith(PREFIX)}
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise EdgecnnError(f"{path} takes {len(inputs)} inputs ({names}); edgecnn feeds one image input")
        graph_in = inputs[0]
        if graph_in.type != "tensor(float)":
            raise EdgecnnError(f"{path} takes {graph_in.type} input; edgecnn feeds float32 images")
        self.input_name, self.input_shape = graph_in.name, static_dims(graph_in.shape)
        self.input_type = graph_in.type
        self.output_name = score_output_name(self.session)
        graph_out = {o.name: o for o in self.session.get_outputs()}[self.output_name]
        self.output_shape = static_dims(graph_out.shape)

    def run(self, batch: np.ndarray) -> np.ndarray:
        (scores,) = self.session.run([self.output_name], {self.input_name: batch})
        return np.asarray(scores, dtype=np.float32)

    def runner(self, batch: np.ndarray) -> Callable[[], Any]:
        return bind_io(self.session, self.device, {self.input_name: batch}, self.device_id).run

    def placement(self) -> dict[str, Any]:
        return self.checked.placement.to_dict()


class OrtBackend(Backend):
    name = "ort"
    title = "ONNX Runtime"
    module = "onnxruntime"
    extra = None
    file_suffixes = (".onnx",)

    def version(self) -> str:
        return str(import_ort().__version__)

    def devices(self) -> list[str]:
        return available_providers()

    def open(self, path: Path, config: SessionConfig, *, allow_cpu_nodes: bool = False) -> OrtModel:
        checked = open_checked(path, config, lambda s: zero_feeds(s, 1), allow_cpu_nodes=allow_cpu_nodes)
        return OrtModel(path, checked, config)
