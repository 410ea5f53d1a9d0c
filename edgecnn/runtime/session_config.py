"""What a session should be: device, threads, graph optimization and provider options, validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.core.errors import EdgecnnError

DEVICES = ("cpu", "cuda", "tensorrt", "auto")
GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


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
    # The batch TensorRT tunes its kernels for (the profile's opt shape): the batch being timed.
    # None = the smallest of trt_profile_batches (the latency case).
    trt_opt_batch: int | None = None
    # TensorRT placement: the share of compute nodes (Conv/Gemm/MatMul) TensorRT must take, else the
    # run is refused (nodes it declined run one by one on CUDA; see placement.check_placement).
    trt_min_compute_share: float = 0.5
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
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise EdgecnnError("thread counts must be >= 0 (0 = ONNX Runtime's default)")
        if self.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise EdgecnnError("graph optimization must be one of disable, basic, extended, all")
        if self.cuda_graphs and self.device not in ("cuda", "tensorrt", "auto"):
            raise EdgecnnError("--cuda-graphs needs --device cuda or tensorrt")
        if self.uses_trt_options and self.device not in ("tensorrt", "auto"):
            raise EdgecnnError("TensorRT options (fp16/int8/engine cache) need --device tensorrt")
        if any(isinstance(b, bool) or b < 1 for b in self.trt_profile_batches):
            raise EdgecnnError("TensorRT profile batch sizes must be >= 1")
        if self.trt_opt_batch is not None and self.trt_opt_batch not in self.trt_profile_batches:
            raise EdgecnnError("the TensorRT opt batch must be one of the profile batch sizes")
        if not 0.0 <= self.trt_min_compute_share <= 1.0:
            raise EdgecnnError("the TensorRT compute share must be between 0 and 1")
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
