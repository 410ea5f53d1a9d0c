"""ONNX Runtime sessions on a named device, with the truth about which provider really runs.

onnxruntime-gpu on a machine without CUDA logs an error and silently runs on CPU; here a requested
device that does not really run is an error, and `auto` says what it picked.

`bind_io` pre-binds inputs and outputs (IOBinding) so a timed or repeated call does no host allocation
and, on CUDA/TensorRT, no host<->device copies; it is also what CUDA graphs need (fixed addresses).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.text import one_line
from edgecnn.runtime.target import check_target

DEVICES = ("cpu", "cuda", "tensorrt", "auto")
PROVIDER_FOR_DEVICE = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
DEVICE_FOR_PROVIDER = {v: k for k, v in PROVIDER_FOR_DEVICE.items()}
# Where a provider keeps its tensors, as OrtValue/IOBinding name it.
ORT_DEVICE_FOR_PROVIDER = {
    "CPUExecutionProvider": "cpu",
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "cuda",
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
    device_id: int = 0  # which GPU, for cuda/tensorrt
    enable_profiling: bool = False
    profile_prefix: str | None = None
    # ORT writes the graph it optimized here (its "offline" mode; used by `edgecnn optimize`).
    optimized_model_path: Path | None = None
    extra_session_options: dict[str, str] = field(default_factory=dict)
    # One process-wide ONNX Runtime thread pool for every session (see `can_share_thread_pool`).
    shared_thread_pool: bool = False

    def __post_init__(self) -> None:
        if self.shared_thread_pool and self.allow_spinning is not None:
            raise EdgecnnError(
                "spinning can only be set per session; a shared thread pool keeps ONNX Runtime's default"
            )
        if self.device not in DEVICES:
            raise EdgecnnError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise EdgecnnError("thread counts must be >= 0 (0 = ONNX Runtime's default)")
        if self.graph_optimization not in ("disable", "basic", "extended", "all"):
            raise EdgecnnError("graph optimization must be one of disable, basic, extended, all")
        if self.cuda_graphs and self.device not in ("cuda", "tensorrt", "auto"):
            raise EdgecnnError("--cuda-graphs needs --device cuda or tensorrt")
        if self.uses_trt_options and self.device not in ("tensorrt", "auto"):
            raise EdgecnnError("TensorRT options (fp16/int8/engine cache) need --device tensorrt")
        if self.device_id < 0:
            raise EdgecnnError("device id must be >= 0")
        if self.trt_engine_cache is not None and Path(self.trt_engine_cache).is_file():
            raise EdgecnnError(f"TensorRT engine cache {self.trt_engine_cache} is a file, not a directory")

    @property
    def uses_trt_options(self) -> bool:
        return bool(self.trt_fp16 or self.trt_int8 or self.trt_engine_cache)

    def candidate_devices(self) -> tuple[str, ...]:
        """Devices to try, best first. `auto` only considers devices that honour every option asked for,
        so `--device auto --cuda-graphs` never quietly lands on CPU without CUDA graphs."""
        if self.device != "auto":
            return (self.device,)
        if self.uses_trt_options:
            return ("tensorrt",)
        if self.cuda_graphs:
            return ("tensorrt", "cuda")
        return ("tensorrt", "cuda", "cpu")


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


# ORT's process-wide thread pool, once created, cannot be resized, and every later session of the
# process must use it. So only a process that is one CLI command (cli.main) may create it.
_process_may_share_pool = False
_shared_pool_sizes: tuple[int, int] | None = None


def allow_shared_thread_pool() -> None:
    """Called by the CLI entry point: this process runs one command, so ORT's process-wide pool is ours."""
    global _process_may_share_pool
    _process_may_share_pool = True


def can_share_thread_pool(intra_op_threads: int, inter_op_threads: int) -> bool:
    """Whether sessions of this process can use one shared pool of these sizes.

    Why share: with a pool per session, an idle session's workers keep spinning after its last run
    and take a core from the session that runs next. Timing two models side by side then shows
    multi-millisecond tails (measured here: batch-64 p90 5.1 ms vs 1.2 ms) that neither model has on
    its own. One shared pool has no idle spinners.
    """
    return _process_may_share_pool and _shared_pool_sizes in (None, (intra_op_threads, inter_op_threads))


def _check_fits_shared_pool(config: SessionConfig) -> None:
    sizes = (config.intra_op_threads, config.inter_op_threads)
    if _shared_pool_sizes is not None and sizes != _shared_pool_sizes:
        raise EdgecnnError(
            f"this process already runs ONNX Runtime's shared thread pool with {_shared_pool_sizes[0]} "
            f"intra-op / {_shared_pool_sizes[1]} inter-op threads; it cannot be resized"
        )
    if config.allow_spinning is not None:
        raise EdgecnnError(
            "spinning can only be set per session; a shared thread pool keeps ONNX Runtime's default"
        )


def _ensure_shared_thread_pool(config: SessionConfig) -> None:
    global _shared_pool_sizes
    _check_fits_shared_pool(config)
    if _shared_pool_sizes is not None:
        return
    sizes = (config.intra_op_threads, config.inter_op_threads)
    _import_ort()
    from onnxruntime.capi import _pybind_state

    try:
        _pybind_state.set_global_thread_pool_sizes(*sizes)
    except Exception as exc:  # noqa: BLE001 - pools already created elsewhere in this process
        raise EdgecnnError(f"cannot set up ONNX Runtime's shared thread pool: {exc}") from None
    _shared_pool_sizes = sizes


def available_providers() -> list[str]:
    return list(_import_ort().get_available_providers())


def _provider_list(config: SessionConfig, device: str) -> list[Any]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    cuda_opts: dict[str, Any] = {"device_id": str(config.device_id)}
    if device == "cuda":
        if config.cuda_graphs:
            cuda_opts["enable_cuda_graph"] = "1"
        return [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
    # Provider options travel as strings through the C API; "True"/"False" is what the TRT EP parses.
    trt_opts: dict[str, Any] = {
        "device_id": str(config.device_id),
        "trt_fp16_enable": str(config.trt_fp16),
        "trt_int8_enable": str(config.trt_int8),
    }
    if config.trt_int8:
        # Our INT8 exports are QDQ graphs: TensorRT takes the scales from the Q/DQ nodes, no calibration.
        trt_opts["trt_int8_use_native_calibration_table"] = "False"
    if config.cuda_graphs:
        trt_opts["trt_cuda_graph_enable"] = "True"
    if config.trt_engine_cache is not None:
        cache = Path(config.trt_engine_cache)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or exc
            raise EdgecnnError(f"cannot create TensorRT engine cache {cache}: {reason}") from None
        # Building an engine takes minutes; the timing cache makes rebuilds for new shapes much faster.
        trt_opts.update(
            trt_engine_cache_enable="True",
            trt_engine_cache_path=str(cache),
            trt_timing_cache_enable="True",
            trt_timing_cache_path=str(cache),
        )
    # CUDA stays in the list for the nodes TensorRT does not take; CPU for the ones CUDA does not have.
    return [
        ("TensorrtExecutionProvider", trt_opts),
        ("CUDAExecutionProvider", cuda_opts),
        "CPUExecutionProvider",
    ]


def session_options(config: SessionConfig) -> Any:
    ort = _import_ort()
    so = ort.SessionOptions()
    if config.shared_thread_pool or _shared_pool_sizes is not None:
        # Once the shared pool exists ORT refuses per-session pools, so every session joins it.
        _check_fits_shared_pool(config)
        so.use_per_session_threads = False
    else:
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
    if config.optimized_model_path is not None:
        so.optimized_model_filepath = str(config.optimized_model_path)
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
    if config.shared_thread_pool or _shared_pool_sizes is not None:
        _ensure_shared_thread_pool(config)
    try:
        # ORT prints its own fallback banner on stdout; the check below reports the outcome instead.
        with contextlib.redirect_stdout(io.StringIO()):
            session = ort.InferenceSession(
                str(path), sess_options=session_options(config), providers=_provider_list(config, device)
            )
    except Exception as exc:  # noqa: BLE001 - ORT raises Fail/InvalidGraph/... for bad files
        msg = one_line(exc, 2000)
        if len(msg) > 300:
            msg = msg[:300] + "..."
        raise EdgecnnError(f"ONNX Runtime cannot load {path}: {msg}") from None
    # Before any run: a graph optimized for another CPU could compute with the wrong block layout.
    check_target(path, session.get_modelmeta().custom_metadata_map, device)
    running = session.get_providers()
    if running[0] != wanted:
        libs = "/TensorRT" if device == "tensorrt" else ""
        raise EdgecnnError(
            f"device {device!r} was requested but ONNX Runtime fell back to {running[0]} "
            f"({wanted} failed to initialise: are the CUDA/cuDNN{libs} libraries installed "
            "and a GPU visible?)"
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


def open_session(
    path: str | os.PathLike[str], config: SessionConfig = SessionConfig(), notes: list[str] | None = None
) -> tuple[Any, str]:
    """Open `path` on `config.device`. Returns (session, provider that really runs).

    `auto` tries TensorRT, then CUDA, then CPU (only those that honour the options asked for) and keeps
    the first that really initialises; why the others were skipped is appended to `notes`.
    """
    model_path = check_model_file(path)
    if config.device != "auto":
        session = _open(model_path, config, config.device)
        return session, session.get_providers()[0]
    errors = []
    candidates = config.candidate_devices()
    for device in candidates:
        if PROVIDER_FOR_DEVICE[device] not in available_providers():
            errors.append(f"{device}: {PROVIDER_FOR_DEVICE[device]} is not in this onnxruntime build")
            continue
        try:
            session = _open(model_path, config, device)
        except EdgecnnError as exc:
            if device == "cpu":
                raise
            reason = "did not initialise" if "fell back" in str(exc) else str(exc)
            errors.append(f"{device}: {reason}")
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


def ort_device(provider: str) -> str:
    """The OrtValue device name ("cpu" or "cuda") where `provider` wants its inputs and outputs."""
    try:
        return ORT_DEVICE_FOR_PROVIDER[provider]
    except KeyError:
        raise EdgecnnError(f"no IOBinding device known for {provider}; run without --io-binding") from None


def resolve_shape(shape: Any, batch: int, batch_symbols: set[str] | None = None) -> tuple[int, ...] | None:
    """A concrete shape for an ORT NodeArg shape: symbolic/unknown leading dim or known batch symbols
    become `batch`; None when another dim stays unknown (then only a real run can tell)."""
    dims: list[int] = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif i == 0 or (isinstance(d, str) and batch_symbols and d in batch_symbols):
            dims.append(batch)
        else:
            return None
    return tuple(dims)


_ORT_TYPE_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def numpy_dtype(ort_type: str) -> Any:
    try:
        return _ORT_TYPE_TO_NUMPY[ort_type]
    except KeyError:
        raise EdgecnnError(f"unsupported tensor type {ort_type}") from None


@dataclass
class BoundIO:
    """One session with its inputs and outputs bound once; `run()` is the whole per-call cost."""

    session: Any
    binding: Any
    device: str
    inputs: dict[str, Any]  # OrtValues kept alive as long as the binding uses their memory
    outputs: dict[str, Any]  # pre-allocated output OrtValues (empty where ORT allocates per run)
    run_options: Any = None

    def run(self) -> None:
        # Session.Run synchronizes the device stream before returning (ORT's default), so a host timer
        # around this call measures the finished GPU work too.
        self.session.run_with_iobinding(self.binding, self.run_options)

    def output_arrays(self) -> list[np.ndarray]:
        """The outputs of the last run, copied to host memory (not for timed loops)."""
        return list(self.binding.copy_outputs_to_cpu())


def run_options(graph_id: int | None = None) -> Any:
    """RunOptions naming the CUDA graph a run captures/replays. ORT keeps one graph per id and replays
    it on the buffers it was captured with, so each input shape needs its own id (>= 1; 0 is ORT's
    internal default); -1 runs without capturing, for plain `session.run` calls on a graph session."""
    ort = _import_ort()
    options = ort.RunOptions()
    if graph_id is not None:
        if graph_id == 0 or graph_id < -1:
            raise EdgecnnError("CUDA graph ids are >= 1 (or -1 for no graph)")
        options.add_run_config_entry("gpu_graph_id", str(graph_id))
    return options


def bind_io(
    session: Any, provider: str, feeds: dict[str, np.ndarray], device_id: int = 0, graph_id: int | None = None
) -> BoundIO:
    """Put `feeds` on the provider's device once and bind them; pre-allocate outputs there when their
    shapes follow from the batch size, so repeated runs allocate nothing (CUDA graphs require that).

    On CPU the input OrtValues share the (contiguous) host arrays' memory and keep them alive; on
    CUDA/TensorRT they are device copies made here, outside any timed loop.

    `graph_id` (CUDA graphs only): one id per distinct binding, see `run_options`."""
    ort = _import_ort()
    device = ort_device(provider)
    binding = session.io_binding()
    inputs: dict[str, Any] = {}
    batch = None
    batch_symbols: set[str] = set()
    for arg in session.get_inputs():
        if arg.name not in feeds:
            raise EdgecnnError(f"no data for model input {arg.name!r}")
        array = np.ascontiguousarray(feeds[arg.name])
        value = ort.OrtValue.ortvalue_from_numpy(array, device, device_id)
        binding.bind_ortvalue_input(arg.name, value)
        inputs[arg.name] = value
        if arg.shape and array.ndim:
            batch = array.shape[0] if batch is None else batch
            if isinstance(arg.shape[0], str):
                batch_symbols.add(arg.shape[0])
    outputs: dict[str, Any] = {}
    for arg in session.get_outputs():
        shape = resolve_shape(arg.shape, batch or 1, batch_symbols)
        if shape is None and graph_id is not None:
            raise EdgecnnError(
                f"output {arg.name!r} has shape {list(arg.shape)}: CUDA graphs need outputs whose shape "
                "follows from the batch size; run without --cuda-graphs"
            )
        if shape is None:
            binding.bind_output(arg.name, device, device_id)  # ORT allocates; shape known only at run time
            continue
        dtype = numpy_dtype(arg.type)
        value = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, device, device_id)
        binding.bind_ortvalue_output(arg.name, value)
        outputs[arg.name] = value
    return BoundIO(
        session=session,
        binding=binding,
        device=device,
        inputs=inputs,
        outputs=outputs,
        run_options=run_options(graph_id) if graph_id is not None else None,
    )


def open_cpu_session(path: Path, threads: int = 0) -> tuple[Any, str]:
    return open_session(path, SessionConfig(device="cpu", intra_op_threads=threads))
