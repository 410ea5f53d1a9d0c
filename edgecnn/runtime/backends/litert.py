"""LiteRT (ai-edge-litert, formerly TFLite) as a backend: .tflite files run by its interpreter with the
XNNPACK delegate (its default on CPU), `num_threads` from the session config, and as placement how many
of the model's ops XNNPACK took. No TensorFlow: only the `ai_edge_litert` wheel.

Optional extra: pip install 'edgecnn[litert]'."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, path_text_for_library, show_path
from edgecnn.core.metadata import LOGITS_NAME, OUTPUT_NAME
from edgecnn.core.text import one_line
from edgecnn.core.tflite_metadata import read_tflite_props
from edgecnn.runtime.backends.base import Backend, OpenedModel, static_dims, zeros_for
from edgecnn.runtime.session_config import SessionConfig

DELEGATE_OP = "DELEGATE"
METHOD = "LiteRT interpreter op details: the original ops inside each DELEGATE node's partition"


def delegated_ops(ops: list[dict[str, Any]]) -> tuple[set[int], int]:
    """(indices of the model's ops that a delegate took, number of delegate nodes).

    After the delegate is applied the interpreter lists the model's ops followed by one DELEGATE node
    per partition; a partition is every op on the paths from that node's outputs back to its inputs."""
    original = [op for op in ops if op["op_name"] != DELEGATE_OP]
    delegates = [op for op in ops if op["op_name"] == DELEGATE_OP]
    producer = {int(t): op for op in original for t in op["outputs"]}
    taken: set[int] = set()
    for node in delegates:
        boundary = {int(t) for t in node["inputs"]}
        stack, seen = [int(t) for t in node["outputs"]], set()
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor in seen:
                continue
            seen.add(tensor)
            op = producer.get(tensor)
            if op is not None and op["index"] not in taken:
                taken.add(int(op["index"]))
                stack.extend(int(t) for t in op["inputs"] if t >= 0)
    return taken, len(delegates)


class LiteRtModel(OpenedModel):
    def __init__(self, path: Path, interpreter: Any, config: SessionConfig, version: str) -> None:
        self.interpreter = interpreter
        self.runtime = "litert"
        self.runtime_version = version
        self.precision = None  # a .tflite runs at the precision it was converted to
        self.threads = config.threads
        self.metadata = read_tflite_props(path)
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1:
            raise EdgecnnError(f"{path} takes {len(inputs)} inputs; edgecnn feeds one image input")
        graph_in = inputs[0]
        if graph_in["dtype"] != np.float32:
            raise EdgecnnError(
                f"{path} takes {np.dtype(graph_in['dtype']).name} input; edgecnn feeds float32 images "
                "(export integer models with float input/output)"
            )
        self.input_index, self.input_name = graph_in["index"], graph_in["name"]
        self.input_shape = static_dims(graph_in.get("shape_signature", graph_in["shape"]))
        named = [o for n in (OUTPUT_NAME, LOGITS_NAME) for o in outputs if n in o["name"]]
        graph_out = named[0] if named else outputs[0]
        self.output_index, self.output_name = graph_out["index"], graph_out["name"]
        self.output_shape = static_dims(graph_out.get("shape_signature", graph_out["shape"]))
        self._shape: tuple[int, ...] | None = None
        self._ops = interpreter._get_ops_details()  # noqa: SLF001 - the only view of the delegated plan
        self.device = (
            "litert:XNNPACK" if any(op["op_name"] == DELEGATE_OP for op in self._ops) else "litert:CPU"
        )

    def _bind(self, batch: np.ndarray) -> None:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.shape != self._shape:
            self.interpreter.resize_tensor_input(self.input_index, list(batch.shape))
            self.interpreter.allocate_tensors()
            self._shape = batch.shape
        self.interpreter.set_tensor(self.input_index, batch)

    def run(self, batch: np.ndarray) -> np.ndarray:
        self._bind(batch)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output_index), dtype=np.float32)

    def runner(self, batch: np.ndarray) -> Callable[[], Any]:
        self._bind(batch)
        return self.interpreter.invoke

    def placement(self) -> dict[str, Any]:
        taken, partitions = delegated_ops(self._ops)
        original = [op for op in self._ops if op["op_name"] != DELEGATE_OP]
        left = Counter(op["op_name"] for op in original if op["index"] not in taken)
        total = len(original)
        summary = f"{len(taken)} of {total} ops in XNNPACK ({partitions} partition(s))"
        if left:
            summary += (
                ", " + ", ".join(f"{n} {name}" for name, n in left.most_common()) + " on LiteRT's own kernels"
            )
        return {
            "ops_total": total,
            "xnnpack_ops": len(taken),
            "delegate_partitions": partitions,
            "builtin_ops": dict(left.most_common()),
            "summary": summary,
            "method": METHOD,
        }


class LiteRtBackend(Backend):
    name = "litert"
    title = "LiteRT"
    module = "ai_edge_litert.interpreter"
    extra = "litert"
    file_suffixes = (".tflite",)

    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version("ai-edge-litert")
        except metadata.PackageNotFoundError:
            return "unknown"

    def devices(self) -> list[str]:
        return ["CPU (XNNPACK)"]

    def open(self, path: Path, config: SessionConfig, *, allow_cpu_nodes: bool = False) -> LiteRtModel:
        from ai_edge_litert.interpreter import Interpreter

        return open_with(Interpreter, path, config, self.version())


def open_with(interpreter_class: Any, path: Path, config: SessionConfig, version: str) -> LiteRtModel:
    """`path` in an interpreter of `interpreter_class`, checked like every backend opens a file (the one
    file-argument check, one line for a file LiteRT cannot load or run). The class is a parameter so the
    export side can hand in TensorFlow's copy of the same interpreter where ai-edge-litert is missing:
    this module itself never imports TensorFlow."""
    path = check_input_file(path, "model file")
    name = path_text_for_library(path)  # None: a file name LiteRT's C++ cannot take; give it the bytes
    try:
        if name is None:
            interpreter = interpreter_class(
                model_content=path.read_bytes(), num_threads=config.threads or None
            )
        else:
            interpreter = interpreter_class(model_path=name, num_threads=config.threads or None)
        interpreter.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError with its C++ text
        raise EdgecnnError(f"LiteRT could not load {show_path(path)}: {one_line(exc, 300)}") from None
    model = LiteRtModel(path, interpreter, config, version)
    try:
        model.run(zeros_for(model.input_shape))
    except Exception as exc:  # noqa: BLE001
        raise EdgecnnError(f"LiteRT failed to run {show_path(path)}: {one_line(exc, 300)}") from None
    return model
