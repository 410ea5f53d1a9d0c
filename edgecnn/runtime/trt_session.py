"""The session `eval` and `predict` open on TensorRT: the same explicit profile as bench (min 1, opt =
max = the command's batch size, so the last short batch fits), TensorRT's own precision (`--precision
fp16|int8`: its FP16 kernels, or INT8 from the file's Q/DQ scales) and an engine cache, by default under
the user cache dir, one folder per model hash + ONNX Runtime version + TensorRT version + precision, so
a second eval loads the engine instead of building it and no engine is reused across any of those."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import sha256_file
from edgecnn.runtime.session_config import SessionConfig
from edgecnn.runtime.trt_qdq import check_trt_int8

PRECISIONS = ("fp32", "fp16", "int8")


def engine_cache_root() -> Path:
    env = os.environ.get("EDGECNN_TRT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "edgecnn" / "trt-engines"


def tensorrt_version() -> str:
    """The TensorRT Python package's version when installed (pip's tensorrt / tensorrt-cu12...), else
    "unknown" (JetPack's system TensorRT: the key then relies on ORT's own engine compatibility check)."""
    for name in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-libs", "tensorrt-cu12-libs"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def default_engine_cache(model: Path, precision: str) -> Path:
    import onnxruntime as ort

    key = f"{sha256_file(model)[:16]}-ort{ort.__version__}-trt{tensorrt_version()}-{precision}"
    return engine_cache_root() / key


def check_precision(device: str, precision: str, engine_cache: Path | None) -> None:
    if precision not in PRECISIONS:
        raise EdgecnnError(f"unknown --precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if device != "tensorrt" and (precision != "fp32" or engine_cache is not None):
        raise EdgecnnError("--precision fp16|int8 and --trt-engine-cache need --device tensorrt")


def inference_session_config(
    model: Path,
    device: str,
    intra_op_threads: int,
    batch_size: int,
    precision: str = "fp32",
    engine_cache: Path | None = None,
) -> SessionConfig:
    """The SessionConfig of an eval/predict run; TensorRT's options only on device tensorrt."""
    check_precision(device, precision, engine_cache)
    if device != "tensorrt":
        return SessionConfig(device=device, intra_op_threads=intra_op_threads)
    if precision == "int8":
        check_trt_int8(model)  # TensorRT's INT8 reads the file's Q/DQ scales: they must follow its rules
    return SessionConfig(
        device="tensorrt",
        intra_op_threads=intra_op_threads,
        trt_fp16=precision == "fp16",
        trt_int8=precision == "int8",
        trt_engine_cache=engine_cache or default_engine_cache(model, precision),
        trt_profile_batches=tuple(sorted({1, batch_size})),
        trt_opt_batch=batch_size,
    )
