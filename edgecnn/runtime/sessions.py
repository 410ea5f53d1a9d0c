"""ONNX Runtime sessions on a named device, with the truth about which provider really runs.

onnxruntime-gpu on a machine without CUDA logs an error and silently runs on CPU; here a requested
device that does not really run is an error, and `auto` says what it picked.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import edgecnn.runtime.thread_pool as thread_pool
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, path_text_for_library, show_path
from edgecnn.runtime.ort_errors import ort_load_error_line
from edgecnn.runtime.ort_library import available_providers, import_ort, preload_gpu_libraries
from edgecnn.runtime.ort_log import OrtLog, captured_ort_log, clean_ort_message
from edgecnn.runtime.providers import PROVIDER_FOR_DEVICE, provider_list, trt_profile_shapes
from edgecnn.runtime.session_config import ORT_OPTIMIZATION_LEVELS, SessionConfig
from edgecnn.runtime.target import check_target, file_props

T = TypeVar("T")


def session_options(config: SessionConfig) -> Any:
    ort = import_ort()
    so = ort.SessionOptions()
    if config.shared_thread_pool or thread_pool.pool_exists():
        # Once the shared pool exists ORT refuses per-session pools, so every session joins it.
        thread_pool.check_fits_shared_pool(config)
        so.use_per_session_threads = False
    else:
        so.intra_op_num_threads = config.threads
        so.inter_op_num_threads = config.inter_op_threads
    level = ORT_OPTIMIZATION_LEVELS[config.graph_optimization]
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
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
    if config.optimized_model_path is not None:
        so.optimized_model_filepath = str(config.optimized_model_path)
    so.log_severity_level = 3
    return so


DOCTOR_HINT = "run `edgecnn doctor` to see what is missing and what to install"


class ProviderFailed(EdgecnnError):
    """A GPU execution provider did not start or failed its first run; `reason` is what ORT said."""

    def __init__(self, device: str, provider: str, when: str, reason: str) -> None:
        reason = reason.strip().rstrip(".")
        self.device, self.provider, self.reason = device, provider, reason
        super().__init__(
            f"device {device!r}: {provider} failed {when}: {reason}. edgecnn does not fall back to the "
            f"CPU; {DOCTOR_HINT}"
        )


def _ort_reason(exc: BaseException | None, log: OrtLog) -> str:
    """The log's account first (it names the library that did not load), then ORT's exception."""
    parts = [log.reason()] + ([clean_ort_message(str(exc))] if exc is not None else [])
    return "; ".join(dict.fromkeys(p for p in parts if p)) or "ONNX Runtime gave no reason"


def _open_on(path: Path, config: SessionConfig, device: str) -> Any:
    ort = import_ort()
    wanted = PROVIDER_FOR_DEVICE[device]
    if wanted not in ort.get_available_providers():
        raise EdgecnnError(
            f"device {device!r} needs {wanted}, which this onnxruntime build "
            f"({ort.__version__}) does not include; available: {', '.join(ort.get_available_providers())}"
        )
    # Before ORT sees the graph: a graph optimized for another CPU or ORT may not even load here (ORT's
    # raw op error), or could compute with the wrong block layout.
    check_target(path, file_props(path), device)
    if device != "cpu":
        check_fallback_honoured(ort.__version__)
        preload_gpu_libraries()
    if config.shared_thread_pool or thread_pool.pool_exists():
        thread_pool.ensure_shared_thread_pool(config)
    providers = provider_list(
        config, device, trt_profile_shapes(path, config) if device == "tensorrt" else None
    )
    failure: Exception | None = None
    # enable_fallback=0: ORT raises instead of printing "Falling back" on stdout and silently re-creating
    # the session (at creation and at the first run) on CUDA/CPU. Its C++ log is routed into `log`.
    with captured_ort_log() as log, contextlib.redirect_stdout(io.StringIO()):
        try:
            session = ort.InferenceSession(
                model_source(path), sess_options=session_options(config), providers=providers,
                enable_fallback=0,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - ORT raises Fail/InvalidGraph/RuntimeError...
            failure = exc
    if failure is not None:
        if device != "cpu" and _is_provider_failure(failure, log):
            raise ProviderFailed(device, wanted, "to initialise", _ort_reason(failure, log)) from None
        raise EdgecnnError(ort_load_error_line(path, failure)) from None
    running = session.get_providers()
    if running[0] != wanted:
        # A provider library that fails to load does not raise: ORT logs why and registers the rest.
        reason = _ort_reason(None, log)
        raise ProviderFailed(
            device, wanted, "to initialise", f"{reason}; ONNX Runtime started {running[0]} instead"
        )
    return session


def _is_provider_failure(exc: Exception, log: OrtLog) -> bool:
    """A GPU provider's own failure (library, driver, plugin registration), not a bad model file."""
    text = str(exc)
    markers = ("ExecutionProvider", "TensorRT", "CUDA", "cuda", "EP_FAIL", "Please install")
    return bool(log.messages()) or any(m in text for m in markers)


def run_first(session: Any, device: str, run: Callable[[], T]) -> T:
    """The first run of a session opened by `open_session`: TensorRT builds its engine here (dynamic
    batch) and the CUDA EP allocates; with fallback off, a failure raises, and it becomes one line
    naming the provider and ORT's reason instead of a silent re-run on the CPU."""
    failure: Exception | None = None
    with captured_ort_log() as log, contextlib.redirect_stdout(io.StringIO()):
        try:
            result = run()
        except Exception as exc:  # noqa: BLE001 - ORT raises Fail/EPFail/RuntimeException
            failure = exc
    if failure is None:
        return result
    provider = session.get_providers()[0]
    if device != "cpu" and provider != "CPUExecutionProvider":
        raise ProviderFailed(device, provider, "at its first run", _ort_reason(failure, log)) from None
    raise EdgecnnError(f"ONNX Runtime failed to run the model: {clean_ort_message(str(failure))}") from None


def check_model_file(path: str | os.PathLike[str]) -> Path:
    """`path` if it is a readable regular file that could be an ONNX model (checked before opening)."""
    path = check_input_file(path, "model file")
    with open(path, "rb") as fh:
        head = fh.read(64)
    # An ONNX file is a protobuf ModelProto; text, zip (.keras) and HDF5 files are refused early.
    if not head or head.startswith((b"PK", b"\x89HDF", b"{", b"<")) or head.isascii() and head.isalnum():
        raise EdgecnnError(f"{show_path(path)} is not an ONNX model")
    return path


def model_source(path: Path) -> str | bytes:
    """What ONNX Runtime's constructor is given: the path, or for a name that is not UTF-8 (which its
    constructor cannot take) the model's bytes."""
    text = path_text_for_library(path)
    return text if text is not None else path.read_bytes()


# InferenceSession(enable_fallback=0) is read from 1.23 on; 1.20-1.22 swallow the keyword and, when a GPU
# provider fails at creation, print "Falling back" and re-create the session on CPU (checked in the
# 1.20.1, 1.21.1, 1.22.0 and 1.23.2 wheels' onnxruntime_inference_collection.py; docs/tensorrt.md).
FALLBACK_HONOURED = (1, 23)


def check_fallback_honoured(version: str) -> None:
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < FALLBACK_HONOURED:
        raise EdgecnnError(
            f"onnxruntime {version} ignores enable_fallback=0 (read from 1.23 on): a GPU provider that fails "
            "to start would silently run on the CPU; install onnxruntime-gpu >= 1.23"
        )


def open_session(
    path: str | os.PathLike[str], config: SessionConfig = SessionConfig(), notes: list[str] | None = None
) -> tuple[Any, str]:
    """Open `path` on `config.device`. Returns (session, provider that really runs).

    `auto` tries TensorRT, then CUDA, then CPU (only those that honour the options asked for) and keeps
    the first that really initialises; why the others were skipped is appended to `notes`.
    """
    model_path = check_model_file(path)
    if config.device != "auto":
        session = _open_on(model_path, config, config.device)
        return session, session.get_providers()[0]
    errors = []
    candidates = config.candidate_devices()
    for device in candidates:
        if PROVIDER_FOR_DEVICE[device] not in available_providers():
            errors.append(f"{device}: {PROVIDER_FOR_DEVICE[device]} is not in this onnxruntime build")
            continue
        try:
            session = _open_on(model_path, config, device)
        except ProviderFailed as exc:
            errors.append(f"{device}: {exc.reason}")
            continue
        except EdgecnnError as exc:
            if device == "cpu":
                raise
            errors.append(f"{device}: {exc}")
            continue
        if notes is not None:
            notes.append(
                f"--device auto picked {session.get_providers()[0]}"
                + (f" (skipped {'; '.join(errors)})" if errors else "")
            )
        return session, session.get_providers()[0]
    raise EdgecnnError(
        f"--device auto found no provider among {', '.join(candidates)} that runs the model: "
        + "; ".join(errors)
    )


def open_cpu_session(path: Path, threads: int = 0) -> tuple[Any, str]:
    return open_session(path, SessionConfig(device="cpu", threads=threads))
