"""What a session should be: runtime, device, threads, precision, graph optimization and provider
options, validated. The ONE home of session options: every runtime-side config (eval, predict, bench,
tune, optimize) holds one as `session`, and every check of these options lives here.

Adding a runtime option: a field and its check here, its flag in commands/options.py, and where the
runtime reads it (sessions.session_options for ONNX Runtime, the backend's `open` for the others)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import show_path

DEVICES = ("cpu", "cuda", "tensorrt", "auto")
GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
# ONNX Runtime's enum names for each level: the one map (sessions and placement probes read it).
ORT_OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
RUNTIMES = ("ort", "openvino", "litert")
# One precision vocabulary for every runtime; each maps it to its own terms (or refuses it):
# OpenVINO's inference precision hint (CPU) and TensorRT's builder precision (ORT on --device tensorrt).
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # INFERENCE_PRECISION_HINT values
TRT_PRECISIONS = ("fp32", "fp16", "int8")  # int8: from the file's Q/DQ scales (runtime.trt_qdq)
TRT_DEVICES = ("tensorrt", "auto")  # where ORT may run TensorRT (auto with a TensorRT option: only there)
RUNTIME_DEVICES = {"ort": DEVICES, "openvino": ("cpu",), "litert": ("cpu",)}
MAX_THREADS = 1024
# CPU flags (as /proc/cpuinfo names them) under which each OpenVINO precision runs natively.
PRECISION_FLAGS = {"bf16": ("amx_bf16", "avx512_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


def unsupported_precision(precision: str, flags: set[str] | None = None) -> str | None:
    """Why this CPU cannot run `precision` natively (None when it can): OpenVINO would otherwise
    emulate bf16/f16 or quietly run f32, and a result labelled bf16 would not be what ran."""
    needed = PRECISION_FLAGS.get(precision)
    if not needed:
        return None
    if flags is None:
        from edgecnn.core.environment import cpu_info

        flags = set(cpu_info()["flags"]) | _all_cpu_flags()
    if any(f in flags for f in needed):
        return None
    return (
        f"--precision {precision} needs a CPU with {' or '.join(f.upper() for f in needed)}; this CPU "
        "has neither (use --precision fp32)"
    )


def _all_cpu_flags() -> set[str]:
    # cpu_info keeps only the flags results record; amx_fp16 is not among them.
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("flags", "features")):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


DEFAULT_TRT_MIN_COMPUTE_SHARE = 0.5


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask), at least 1."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# Oversubscribing the cores is a legitimate experiment; beyond this many threads per core only the
# memory grows (100000 threads: 1.8 GB and no end).
THREADS_PER_CORE_LIMIT = 4


def check_thread_count(value: object, name: str, limit: int | None = None) -> int:
    """A thread count as an option or a file gives it: an integer from 0 (ONNX Runtime's default) to
    `limit` (default: THREADS_PER_CORE_LIMIT per usable core)."""
    limit = limit if limit is not None else THREADS_PER_CORE_LIMIT * usable_cores()
    if isinstance(value, bool) or not isinstance(value, int):
        raise EdgecnnError(f"{name} must be a whole number of threads, not {value!r}"[:200])
    if not 0 <= value <= limit:
        raise EdgecnnError(
            f"{name} {value} is out of range: 0 (ONNX Runtime's default) to {limit} on this machine"
        )
    return value


@dataclass(frozen=True)
class SessionConfig:
    # ort | openvino | litert (see runtime.backends); None: the file's own (ort for .onnx, litert for .tflite)
    runtime: str | None = None
    device: str = "cpu"
    threads: int = 0  # intra-op threads; 0 = the runtime's default (ORT: one per physical core)
    inter_op_threads: int = 0
    # fp32 | fp16 | bf16 | int8, in the runtime's terms: OpenVINO's inference precision hint (fp32, bf16,
    # fp16), TensorRT's own kernels (fp32, fp16, int8 from the file's Q/DQ). None: the file's own.
    precision: str | None = None
    graph_optimization: str = "all"  # disable | basic | extended | all (ONNX Runtime)
    allow_spinning: bool | None = None  # None = ONNX Runtime's default
    cuda_graphs: bool = False
    # TensorRT's engine (and timing) cache folder; eval/predict default it per model, versions and
    # precision (runtime.trt_session), bench keeps one subfolder per timed batch.
    trt_engine_cache: Path | None = None
    # Batch sizes the session will run (TensorRT): explicit min/opt/max profile shapes, see providers.
    trt_profile_batches: tuple[int, ...] = ()
    # The batch TensorRT tunes its kernels for (the profile's opt shape): the batch being timed.
    # None = the smallest of trt_profile_batches (the latency case).
    trt_opt_batch: int | None = None
    # TensorRT placement: the share of compute nodes (Conv/Gemm/MatMul) TensorRT must take, else the
    # run is refused (nodes it declined run one by one on CUDA; see placement.check_placement).
    trt_min_compute_share: float = DEFAULT_TRT_MIN_COMPUTE_SHARE
    device_id: int = 0  # which GPU, for cuda/tensorrt
    enable_profiling: bool = False
    profile_prefix: str | None = None
    # ORT writes the graph it optimized here (its "offline" mode; used by `edgecnn optimize`).
    optimized_model_path: Path | None = None
    extra_session_options: dict[str, str] = field(default_factory=dict)
    # One process-wide ONNX Runtime thread pool for every session (see thread_pool.can_share_thread_pool).
    shared_thread_pool: bool = False

    def __post_init__(self) -> None:
        if self.trt_engine_cache is not None:
            object.__setattr__(self, "trt_engine_cache", Path(self.trt_engine_cache))
        object.__setattr__(self, "trt_profile_batches", tuple(self.trt_profile_batches))
        if self.device not in DEVICES:
            raise EdgecnnError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        self._check_runtime()
        if self.shared_thread_pool and self.allow_spinning is not None:
            raise EdgecnnError(
                "spinning can only be set per session; a shared thread pool keeps ONNX Runtime's default"
            )
        for count in (self.threads, self.inter_op_threads):
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_THREADS:
                raise EdgecnnError(
                    f"--threads must be between 0 and {MAX_THREADS} (0 = the runtime's default), "
                    f"got {count!r}"
                )
        if self.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise EdgecnnError("graph optimization must be one of disable, basic, extended, all")
        if self.cuda_graphs and self.device not in ("cuda", "tensorrt", "auto"):
            raise EdgecnnError("--cuda-graphs needs --device cuda or tensorrt")
        if self.trt_engine_cache is not None and self.device not in TRT_DEVICES:
            raise EdgecnnError("--trt-engine-cache needs --device tensorrt")
        if any(isinstance(b, bool) or b < 1 for b in self.trt_profile_batches):
            raise EdgecnnError("TensorRT profile batch sizes must be >= 1")
        if self.trt_opt_batch is not None and self.trt_opt_batch not in self.trt_profile_batches:
            raise EdgecnnError("the TensorRT opt batch must be one of the profile batch sizes")
        share = self.trt_min_compute_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise EdgecnnError(f"--trt-min-compute-share must be between 0 and 1, got {share!r}")
        if share != DEFAULT_TRT_MIN_COMPUTE_SHARE and self.device not in TRT_DEVICES:
            # Only a TensorRT run has a compute share to check: an ignored option is refused, not dropped.
            raise EdgecnnError("--trt-min-compute-share needs --device tensorrt (or auto)")
        if self.device_id < 0:
            raise EdgecnnError("device id must be >= 0")
        if self.trt_engine_cache is not None and Path(self.trt_engine_cache).is_file():
            raise EdgecnnError(f"TensorRT engine cache {self.trt_engine_cache} is a file, not a directory")

    def _check_runtime(self) -> None:
        if self.runtime is not None and self.runtime not in RUNTIMES:
            raise EdgecnnError(f"unknown runtime {self.runtime!r}; choose one of {', '.join(RUNTIMES)}")
        if self.runtime not in (None, "ort") and self.device not in RUNTIME_DEVICES[self.runtime]:
            raise EdgecnnError(
                f"--runtime {self.runtime} runs on --device cpu here; --device {self.device} is ONNX "
                "Runtime's (drop --runtime or use --runtime ort)"
            )
        self._check_precision()
        if self.runtime in (None, "ort"):
            return  # a .tflite (runtime None -> litert) is checked again once its runtime is settled
        ort_only = {
            "--graph-optimization": self.graph_optimization != "all",
            "--inter-op-threads": self.inter_op_threads != 0,
            "--spinning": self.allow_spinning is not None,
            "a shared ONNX Runtime thread pool": self.shared_thread_pool,
            "profiling": self.enable_profiling,
            "an optimized-graph output": self.optimized_model_path is not None,
            "ONNX Runtime session entries": bool(self.extra_session_options),
        }
        asked = [name for name, on in ort_only.items() if on]
        if asked:
            raise EdgecnnError(
                f"{asked[0]} is an ONNX Runtime option; --runtime {self.runtime} does not take it"
            )

    def _check_precision(self) -> None:
        """The one precision check: a name from PRECISIONS that this runtime (and device) takes."""
        asked = self.precision
        if asked is None:
            return
        if asked not in PRECISIONS:
            raise EdgecnnError(f"unknown precision {asked!r}; choose one of {', '.join(PRECISIONS)}")
        if self.runtime == "openvino":
            if asked not in OPENVINO_PRECISIONS:
                raise EdgecnnError(
                    f"--precision {asked} is TensorRT's (--device tensorrt); OpenVINO takes "
                    f"{', '.join(OPENVINO_PRECISIONS)} and runs an INT8 file's own Q/DQ (pass "
                    "model.int8.onnx)"
                )
            why = unsupported_precision(asked)
            if why:
                raise EdgecnnError(why)
        elif self.runtime in (None, "ort") and self.device in TRT_DEVICES:
            if asked not in TRT_PRECISIONS:
                raise EdgecnnError(
                    f"--precision {asked} is OpenVINO's (--runtime openvino); TensorRT takes "
                    f"{', '.join(TRT_PRECISIONS)}"
                )
        else:
            where = f"--runtime {self.runtime}" if self.runtime else "ONNX Runtime"
            raise EdgecnnError(
                f"--precision is OpenVINO's hint (--runtime openvino) or TensorRT's (--device tensorrt); "
                f"{where} on --device {self.device} runs each file at its own precision (drop --precision)"
            )

    @property
    def trt_precision(self) -> str:
        """TensorRT's precision on device tensorrt: fp32 unless asked."""
        return self.precision or "fp32"

    @property
    def openvino_precision(self) -> str:
        """OpenVINO's inference precision hint: f32 unless asked (its own default on AMX/AVX512_BF16
        CPUs is bf16, which changes numbers)."""
        return OPENVINO_PRECISIONS[self.precision or "fp32"]

    @property
    def uses_trt_options(self) -> bool:
        """Options only TensorRT honours (so `auto` must land on it)."""
        return self.trt_engine_cache is not None or (
            self.precision is not None and self.runtime in (None, "ort")
        )

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


# A model argument's runtime suffix: "@ort", "@openvino", "@openvino:bf16", "@litert".
_RUNTIME_SUFFIX = re.compile(r"@([A-Za-z0-9_-]+)(?::([A-Za-z0-9_-]+))?")
MODEL_SUFFIX_HELP = (
    f"A model may end in @RUNTIME or @RUNTIME:PRECISION (runtimes {', '.join(RUNTIMES)}; precisions "
    f"{', '.join(PRECISIONS)} as --precision takes them), e.g. model.onnx@openvino:bf16 model.onnx@ort, to "
    "time one file in several runtimes in one run; a .tflite runs in litert. The suffix is read only when "
    "the whole argument is not an existing path."
)


def parse_model_argument(text: str | os.PathLike[str]) -> tuple[Path, str]:
    """A model argument (bench's) -> (path, model_runtimes entry): "model.onnx@openvino:bf16" ->
    (model.onnx, "openvino:bf16"); no suffix -> "" (the session's runtime, or the file's own). An argument
    that exists as it is (a file or a bundle whose name holds '@') is always the path; otherwise a trailing
    @RUNTIME[:PRECISION] is the suffix, its values checked like --runtime/--precision (one line)."""
    text = os.fspath(text)
    head, at, tail = text.rpartition("@")
    match = _RUNTIME_SUFFIX.fullmatch(at + tail) if at and head else None
    if os.path.lexists(text) or match is None:
        return Path(text), ""
    runtime, precision = match.group(1), match.group(2)
    if runtime not in RUNTIMES:
        raise EdgecnnError(
            f"{show_path(text)}: unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}"
        )
    if precision is not None and precision not in PRECISIONS:
        raise EdgecnnError(
            f"{show_path(text)}: unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
        )
    return Path(head), runtime + (f":{precision}" if precision else "")
