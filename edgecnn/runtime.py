"""ONNX Runtime sessions on a named device, with the truth about which provider really runs.

onnxruntime-gpu on a machine without CUDA logs an error and silently runs on CPU; here a requested
device that does not really run is an error, and `auto` says what it picked.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgecnnError

DEVICES = ("cpu", "cuda", "tensorrt", "auto")
PROVIDER_FOR_DEVICE = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


@dataclass(frozen=True)
class SessionConfig:
    device: str = "cpu"
    intra_op_threads: int = 0  # 0 = ONNX Runtime's default (one per physical core)
    inter_op_threads: int = 0
    graph_optimization: str = "all"  # disable | basic | extended | all
    allow_spinning: bool | None = None  # None = ONNX Runtime's default
    cuda_graphs: bool = False
    trt_fp16: bool = False
    trt_int8: bool = False
    trt_engine_cache: Path | None = None
    enable_profiling: bool = False
    profile_prefix: str | None = None
    extra_session_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise EdgecnnError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise EdgecnnError("thread counts must be >= 0 (0 = ONNX Runtime's default)")
        if self.graph_optimization not in ("disable", "basic", "extended", "all"):
            raise EdgecnnError("graph optimization must be one of disable, basic, extended, all")
        if self.cuda_graphs and self.device not in ("cuda", "auto"):
            raise EdgecnnError("--cuda-graphs needs --device cuda")
        if (self.trt_fp16 or self.trt_int8 or self.trt_engine_cache) and self.device not in (
            "tensorrt",
            "auto",
        ):
            raise EdgecnnError("TensorRT options (fp16/int8/engine cache) need --device tensorrt")


@functools.lru_cache(maxsize=1)
def _import_ort() -> Any:
    import onnxruntime as ort

    try:
        # Provider load failures are checked and reported by us, in one line, not as C++ log spam.
        ort.set_default_logger_severity(4)
    except Exception:  # noqa: BLE001
        pass
    return ort


@functools.lru_cache(maxsize=1)
def _preload_gpu_libraries() -> None:
    """Let the GPU wheel load CUDA/cuDNN from pip-installed nvidia-* packages, where it offers that."""
    ort = _import_ort()
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    # preload_dlls prints missing libraries on stdout, which would corrupt --json output.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            preload()
        except Exception:  # noqa: BLE001 - missing CUDA libraries are reported when a session starts
            pass


def available_providers() -> list[str]:
    return list(_import_ort().get_available_providers())


def _provider_list(config: SessionConfig, device: str) -> list[Any]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        cuda_opts: dict[str, Any] = {}
        if config.cuda_graphs:
            cuda_opts["enable_cuda_graph"] = "1"
        return [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
    trt_opts: dict[str, Any] = {"trt_fp16_enable": config.trt_fp16, "trt_int8_enable": config.trt_int8}
    if config.trt_engine_cache is not None:
        Path(config.trt_engine_cache).mkdir(parents=True, exist_ok=True)
        trt_opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(config.trt_engine_cache))
    return [("TensorrtExecutionProvider", trt_opts), "CUDAExecutionProvider", "CPUExecutionProvider"]


def session_options(config: SessionConfig) -> Any:
    ort = _import_ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = config.intra_op_threads
    so.inter_op_num_threads = config.inter_op_threads
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[config.graph_optimization]
    if config.allow_spinning is not None:
        flag = "1" if config.allow_spinning else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", flag)
        so.add_session_config_entry("session.inter_op.allow_spinning", flag)
    for key, value in config.extra_session_options.items():
        so.add_session_config_entry(key, value)
    if config.enable_profiling:
        so.enable_profiling = True
        if config.profile_prefix:
            so.profile_file_prefix = config.profile_prefix
    so.log_severity_level = 3
    return so


def _open(path: Path, config: SessionConfig, device: str) -> Any:
    ort = _import_ort()
    wanted = PROVIDER_FOR_DEVICE[device]
    if wanted not in ort.get_available_providers():
        raise EdgecnnError(
            f"device {device!r} needs {wanted}, which this onnxruntime build "
            f"({ort.__version__}) does not include; available: {', '.join(ort.get_available_providers())}"
        )
    if device != "cpu":
        _preload_gpu_libraries()
    try:
        # ORT prints its own fallback banner on stdout; the check below reports the outcome instead.
        with contextlib.redirect_stdout(io.StringIO()):
            session = ort.InferenceSession(
                str(path), sess_options=session_options(config), providers=_provider_list(config, device)
            )
    except Exception as exc:  # noqa: BLE001 - ORT raises Fail/InvalidGraph/... for bad files
        msg = " ".join(str(exc).split())
        if len(msg) > 300:
            msg = msg[:300] + "..."
        raise EdgecnnError(f"ONNX Runtime cannot load {path}: {msg}") from None
    running = session.get_providers()
    if running[0] != wanted:
        raise EdgecnnError(
            f"device {device!r} was requested but ONNX Runtime fell back to {running[0]} "
            f"({wanted} failed to initialise: are the CUDA/cuDNN{'/TensorRT' if device == 'tensorrt' else ''} "
            "libraries installed and a GPU visible?)"
        )
    return session


def check_model_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise EdgecnnError(f"model file {path} does not exist")
    if path.is_dir():
        raise EdgecnnError(f"{path} is a directory, not an .onnx file")
    with open(path, "rb") as fh:
        head = fh.read(64)
    # An ONNX file is a protobuf ModelProto; text, zip (.keras) and HDF5 files are refused early.
    if not head or head.startswith((b"PK", b"\x89HDF", b"{", b"<")) or head.isascii() and head.isalnum():
        raise EdgecnnError(f"{path} is not an ONNX model")
    return path


def open_session(path: str | os.PathLike[str], config: SessionConfig = SessionConfig()) -> tuple[Any, str]:
    """Open `path` on `config.device`. Returns (session, provider that really runs).

    `auto` tries TensorRT, then CUDA, then CPU, and keeps the first that really initialises.
    """
    model_path = check_model_file(path)
    if config.device != "auto":
        session = _open(model_path, config, config.device)
        return session, session.get_providers()[0]
    errors = []
    for device in ("tensorrt", "cuda", "cpu"):
        if PROVIDER_FOR_DEVICE[device] not in available_providers():
            continue
        try:
            session = _open(model_path, config, device)
        except EdgecnnError as exc:
            errors.append(str(exc))
            if device == "cpu":
                raise
            continue
        return session, session.get_providers()[0]
    raise EdgecnnError("no execution provider could run the model: " + "; ".join(errors))
