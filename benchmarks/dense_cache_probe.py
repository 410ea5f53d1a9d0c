"""Why tf1-cnn's 6272x256 INT8 Dense layer is slow inside the model at batch 1 (`make bench-peers` notes).

Times the layer's int8 GEMM alone in ONNX Runtime (1 thread, batch 1), with 0 to 1024 KiB of other
data touched between calls, as the model's other layers do. Its 1.6 MB of weights only just fit a
2 MB L2: the more other data passes through the cache, the more of them come back from L3.

    .venv/bin/python benchmarks/dense_cache_probe.py
"""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

K, N = 6272, 256  # tf1-cnn: 7x7x128 -> 256


def main() -> None:
    rng = np.random.default_rng(0)
    weights = rng.integers(-127, 128, (K, N)).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "w", "x_zero"], ["y"])],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.uint8(128), "x_zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = ort.OrtValue.ortvalue_from_numpy(rng.integers(0, 255, (1, K)).astype(np.uint8))
    binding = session.io_binding()
    binding.bind_ortvalue_input("x", x)
    binding.bind_output("y")
    for kib in (0, 128, 256, 512, 1024):
        other = np.ones(max(1, kib * 1024 // 4), np.float32)
        times = []
        for _ in range(3000):
            if kib:
                other += 1.0  # what the layers before the Dense read and write
            t0 = time.perf_counter_ns()
            session.run_with_iobinding(binding)
            times.append(time.perf_counter_ns() - t0)
        median_us = np.median(times[500:]) / 1e3
        print(f"{kib:5d} KiB of other data between calls: int8 {K}x{N} GEMM median {median_us:.1f} us")


if __name__ == "__main__":
    main()
