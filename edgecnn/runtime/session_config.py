"""What a session should be: device, threads, graph optimization and provider options, validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.core.errors import EdgecnnError

DEVICES = ("cpu", "cuda", "tensorrt", "auto")
GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


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
    device: str = "cpu"
    intra_op_threads: int = 0  # 0 = ONNX Runtime's default (one per physical core)
    inter_op_threads: int = 0
    graph_optimization: str = "all"  # disable | basic | extended | all
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
        if self.shared_thread_pool and self.allow_spinning is not None:
            raise EdgecnnError(
                "spinning can only be set per session; a shared thread pool keeps ONNX Runtime's default"
            )
        if self.device not in DEVICES:
            raise EdgecnnError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        check_thread_count(self.intra_op_threads, "--threads")
        check_thread_count(self.inter_op_threads, "--inter-threads")
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
