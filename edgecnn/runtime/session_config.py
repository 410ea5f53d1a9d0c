"""What a session should be: runtime, device, threads, precision, graph optimization and provider
options, validated. The ONE home of session options: every runtime-side config (eval, predict, bench,
tune, optimize) holds one as `session`, and every check of these options lives here.

Adding a runtime option: a field and its check here, its flag in commands/options.py, and where the
runtime reads it (sessions.session_options for ONNX Runtime, the backend's `open` for the others)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.core.errors import EdgecnnError

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
PRECISIONS = ("f32", "bf16", "f16")
# The runtimes that take an inference-precision hint, and the devices each runtime runs on here.
PRECISION_RUNTIMES = ("openvino",)
RUNTIME_DEVICES = {"ort": DEVICES, "openvino": ("cpu",), "litert": ("cpu",)}
MAX_THREADS = 1024
# CPU flags (as /proc/cpuinfo names them) under which each precision hint runs natively.
PRECISION_FLAGS = {"bf16": ("amx_bf16", "avx512_bf16"), "f16": ("avx512_fp16", "amx_fp16")}


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
        "has neither (use --precision f32)"
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


@dataclass(frozen=True)
class SessionConfig:
    # ort | openvino | litert (see runtime.backends); None: the file's own (ort for .onnx, litert for .tflite)
    runtime: str | None = None
    device: str = "cpu"
    threads: int = 0  # intra-op threads; 0 = the runtime's default (ORT: one per physical core)
    inter_op_threads: int = 0
    precision: str | None = None  # OpenVINO's inference precision hint: f32 | bf16 | f16
    graph_optimization: str = "all"  # disable | basic | extended | all (ONNX Runtime)
    allow_spinning: bool | None = None  # None = ONNX Runtime's default
    cuda_graphs: bool = False
    trt_fp16: bool = False
    trt_int8: bool = False
    trt_engine_cache: Path | None = None
    # Batch sizes the session will run (TensorRT): explicit min/opt/max profile shapes, see providers.
    trt_profile_batches: tuple[int, ...] = ()
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
        self._check_runtime()
        if self.shared_thread_pool and self.allow_spinning is not None:
            raise EdgecnnError(
                "spinning can only be set per session; a shared thread pool keeps ONNX Runtime's default"
            )
        if self.device not in DEVICES:
            raise EdgecnnError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
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
        if self.uses_trt_options and self.device not in ("tensorrt", "auto"):
            raise EdgecnnError("TensorRT options (fp16/int8/engine cache) need --device tensorrt")
        if any(isinstance(b, bool) or b < 1 for b in self.trt_profile_batches):
            raise EdgecnnError("TensorRT profile batch sizes must be >= 1")
        if self.device_id < 0:
            raise EdgecnnError("device id must be >= 0")
        if self.trt_engine_cache is not None and Path(self.trt_engine_cache).is_file():
            raise EdgecnnError(f"TensorRT engine cache {self.trt_engine_cache} is a file, not a directory")

    def _check_runtime(self) -> None:
        if self.runtime is not None and self.runtime not in RUNTIMES:
            raise EdgecnnError(f"unknown runtime {self.runtime!r}; choose one of {', '.join(RUNTIMES)}")
        if self.precision is not None:
            if self.precision not in PRECISIONS:
                raise EdgecnnError(
                    f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"
                )
            if self.runtime not in PRECISION_RUNTIMES:
                raise EdgecnnError(
                    f"--precision is an OpenVINO hint; {self.runtime or 'the default runtime'} runs each "
                    "file at its own precision (pass --runtime openvino, or drop --precision)"
                )
            why = unsupported_precision(self.precision)
            if why:
                raise EdgecnnError(why)
        if self.runtime in (None, "ort"):
            return  # a .tflite (runtime None -> litert) is checked again once its runtime is settled
        if self.device not in RUNTIME_DEVICES[self.runtime]:
            raise EdgecnnError(
                f"--runtime {self.runtime} runs on --device cpu here; --device {self.device} is ONNX "
                "Runtime's (drop --runtime or use --runtime ort)"
            )
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
