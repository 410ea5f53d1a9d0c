"""The session `eval` and `predict` open on TensorRT: the same explicit profile as bench (min 1, opt =
max = the command's batch size, so the last short batch fits), TensorRT's own precision (SessionConfig's
`precision` fp16|int8: its FP16 kernels, or INT8 from the file's Q/DQ scales) and an engine cache, by
default under the user cache dir, one folder per model hash + ONNX Runtime version + TensorRT version +
precision, so a second eval loads the engine instead of building it and no engine is reused across any
of those."""

from __future__ import annotations

import os
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from edgecnn.core.files import sha256_file
from edgecnn.runtime.session_config import TRT_DEVICES, SessionConfig
from edgecnn.runtime.trt_qdq import check_trt_int8


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


def inference_session(model: Path, session: SessionConfig, batch_size: int) -> SessionConfig:
    """The session of an eval/predict run: `session` as asked, plus on TensorRT (device tensorrt, or auto
    with a TensorRT option) the profile (min 1, opt = max = `batch_size`), the INT8 file check and the
    engine cache (default: one folder per model hash, versions and precision). The precision itself is
    checked by SessionConfig, the one home of session options."""
    if session.runtime not in (None, "ort") or session.device not in TRT_DEVICES:
        return session
    profiled = replace(session, trt_profile_batches=tuple(sorted({1, batch_size})), trt_opt_batch=batch_size)
    if session.candidate_devices() != ("tensorrt",):
        return profiled  # auto may land on CUDA/CPU: no cache folder (it would pin auto to TensorRT)
    if session.trt_precision == "int8":
        check_trt_int8(model)  # TensorRT's INT8 reads the file's Q/DQ scales: they must follow its rules
    cache = session.trt_engine_cache or default_engine_cache(model, session.trt_precision)
    return replace(profiled, trt_engine_cache=cache)
