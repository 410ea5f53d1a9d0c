"""OpenVINO (CPU plugin) as a peer runtime for `make bench-peers`: FP32 from edgecnn's model.onnx and
INT8 from the same bundle's QDQ model.int8.onnx (OpenVINO's low-precision transformations turn the
Q/DQ pairs into int8 kernels), each compiled per batch size with a static shape, one stream, the
latency hint, `threads` inference threads, no CPU pinning and f32 inference precision (so on CPUs
with BF16 the FP32 row stays FP32 and the INT8 row's float parts too).

Benchmark code, not part of the edgecnn package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def available() -> str | None:
    """OpenVINO's version, or None when it is not installed (the rows are then left out, and said so)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return str(ov.get_version())


class OpenVinoRunner:
    """One ONNX file compiled for the CPU plugin, recompiled when the batch size changes."""

    def __init__(self, onnx_path: Path, threads: int) -> None:
        import openvino as ov

        self._ov = ov
        self._core = ov.Core()
        self._path = Path(onnx_path)
        self._threads = threads
        self._batch = -1
        self._request: Any = None
        self._tensor: Any = None

    def _compile(self, shape: tuple[int, ...]) -> None:
        if shape[0] == self._batch:
            return
        model = self._core.read_model(str(self._path))
        model.reshape({model.inputs[0].get_any_name(): list(shape)})
        config = {
            "INFERENCE_NUM_THREADS": self._threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            # Pinned threads measured 0.36 ms -> 1.2-1.5 ms at batch 1 once other runtimes ran between
            # blocks on this shared 2-core VM (unpinned stays 0.33-0.36 ms): pinning fights the
            # interleaving, so it is off, which is what an interleaved comparison can be fair with.
            "ENABLE_CPU_PINNING": False,
        }
        compiled = self._core.compile_model(model, "CPU", config)
        self._request = compiled.create_infer_request()
        self._batch = shape[0]

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """Set the input once (shared memory); the timed call is infer() alone, like ORT with IOBinding."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._compile(x.shape)
        self._tensor = self._ov.Tensor(x, shared_memory=True)
        self._request.set_input_tensor(self._tensor)
        self._keep = x  # the tensor shares this buffer
        return self._request.infer

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.bind(x)()
        return np.array(self._request.get_output_tensor(0).data, copy=True)
