"""`edgecnn tune BUNDLE --device cuda|tensorrt`: the GPU side of the device pick.

Candidates per batch: FP32 and FP16 (CUDA: model.fp16.onnx; TensorRT: its own FP16 kernels on
model.onnx) and, under TensorRT, INT8 from model.int8-trt.onnx (in the bundle or the `BUNDLE-trt` export
beside it), each with and without CUDA graphs. Every (file, precision) is first scored on the device on
the bundle's test images and dropped beyond the accuracy bound vs FP32 on the device; the rest are timed
by `edgecnn bench` in a child process, one batch at a time (CUDA graphs under TensorRT take one batch
size, and TensorRT's profile is tuned for the batch being timed). device.json records the candidates,
their accuracy and latency, and per batch the pick with its session options.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

GPU_DEVICES = ("cuda", "tensorrt")
TRT_INT8_FILE = "model.int8-trt.onnx"
FP32_FILE = "model.onnx"


@dataclass(frozen=True)
class GpuOption:
    """One way to run a file on the GPU."""

    file: Path
    precision: str  # fp32 | fp16 | int8
    cuda_graphs: bool

    @property
    def label(self) -> str:
        return f"{self.precision}{' + cuda graphs' if self.cuda_graphs else ''}"

    def session(self, device: str) -> Any:
        """The SessionConfig this option runs with: TensorRT's precision on tensorrt (CUDA runs each
        file at its own: model.fp16.onnx is the FP16 option there)."""
        from edgecnn.runtime.session_config import SessionConfig

        precision = self.precision if device == "tensorrt" else None
        return SessionConfig(device=device, precision=precision, cuda_graphs=self.cuda_graphs)


def gpu_options(bundle: Path, device: str) -> list[GpuOption]:
    """FP32 first (the reference), then FP16 and (TensorRT) INT8, each without and with CUDA graphs."""
    bundle = Path(bundle)
    files: list[tuple[Path, str]] = [(bundle / FP32_FILE, "fp32")]
    if device == "cuda" and (bundle / "model.fp16.onnx").is_file():
        files.append((bundle / "model.fp16.onnx", "fp16"))
    if device == "tensorrt":
        files.append((bundle / FP32_FILE, "fp16"))  # TensorRT's own FP16 kernels
        for folder in (bundle, bundle.with_name(bundle.name + "-trt")):
            if (folder / TRT_INT8_FILE).is_file():
                files.append((folder / TRT_INT8_FILE, "int8"))
                break
    return [GpuOption(f, p, graphs) for graphs in (False, True) for f, p in files]


def device_accuracy(option: GpuOption, device: str, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    from edgecnn.core.metadata import read_metadata
    from edgecnn.runtime.checked_session import open_checked
    from edgecnn.runtime.inference import accuracy, predict_probabilities
    from edgecnn.runtime.placement import zero_feeds
    from edgecnn.runtime.preprocess import prepare_batch
    from edgecnn.runtime.trt_session import inference_session

    config = inference_session(option.file, replace(option.session(device), cuda_graphs=False), batch)
    checked = open_checked(option.file, config, lambda s: zero_feeds(s, 1))
    return accuracy(predict_probabilities(checked.session, prepare_batch(x, read_metadata(option.file))), y)


def time_option(option: GpuOption, device: str, batch: int, seconds: float, data_dir: Path | None) -> float:
    from edgecnn.benchmarking.bench_config import BenchConfig
    from edgecnn.benchmarking.sweep import run_in_child

    config = BenchConfig(models=(option.file,), session=option.session(device), batch_sizes=(batch,),
                         warmup=10, duration_s=seconds, inputs="real", data_dir=data_dir,
                         io_binding=option.cuda_graphs)  # fmt: skip
    return float(run_in_child(config)["models"][0]["results"][0]["p50_ms"])


def gpu_candidates(
    config: Any, x: np.ndarray, y: np.ndarray, bound_pp: float, candidate: Callable[..., Any]
) -> list[Any]:
    """tune's Candidates (`candidate`), one per option, scored on the device and timed per batch
    (latency_ms[batch][0]: threads do not apply)."""
    device = config.session.device
    options = gpu_options(config.bundle, device)
    scores: dict[tuple[Path, str], float] = {}
    cands = []
    for option in options:
        key = (option.file, option.precision)
        if key not in scores:
            scores[key] = device_accuracy(option, device, x, y, max(config.batch_sizes))
        rel = os.path.relpath(option.file, config.bundle)
        cand = candidate(option.label, rel, [], None, scores[key], True)
        drop = (scores[(options[0].file, "fp32")] - scores[key]) * 100
        if drop > bound_pp:
            cand.accepted, cand.reason = False, f"{drop:.2f} pp below FP32 on {device}"
        for batch in config.batch_sizes if cand.accepted else ():
            seconds = config.rounds * config.round_seconds
            cand.latency_ms[batch] = {0: time_option(option, device, batch, seconds, config.data_dir)}
        cands.append(cand)
    return cands
