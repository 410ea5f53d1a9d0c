"""edgecnn.benchmarking: measuring ONNX models on this device, and comparing the measurements.

Owns `edgecnn bench` (bench_config.py what to measure, measure.py how, bench_run.py the whole run,
sweep.py and child.py several thread counts, results.py bench.json/bench.csv, memory.py peak RSS,
notes.py what the numbers mean), the timing harness (timing.py), speed-up ratios (speedup.py), ORT's per-node
profile (op_profile.py), `edgecnn compare` (compare.py) and their plots (bench_plots.py). Importing it
loads numpy only: never TensorFlow, and onnxruntime/matplotlib only when used."""

from edgecnn.benchmarking.bench_config import BenchConfig, parse_batch_sizes, parse_thread_counts
from edgecnn.benchmarking.bench_run import bench, bench_in_process, shares_thread_pool
from edgecnn.benchmarking.compare import CompareConfig, CompareResult, compare
from edgecnn.benchmarking.op_profile import OpProfile, profile_session_ops
from edgecnn.benchmarking.results import (
    BatchResult,
    BenchResult,
    HarnessOverhead,
    ModelResult,
    load_document,
    to_csv,
)
from edgecnn.benchmarking.speedup import Speedup, median_round_ratio, ratio, speedup_vs_baseline
from edgecnn.benchmarking.sweep import ThreadSweepResult, bench_thread_sweep
from edgecnn.benchmarking.timing import (
    LatencyStats,
    interleaved_rounds,
    interleaved_rounds_by_round,
    session_runner,
    time_session,
    timed_loop,
)

__all__ = [
    "BatchResult",
    "BenchConfig",
    "BenchResult",
    "CompareConfig",
    "CompareResult",
    "HarnessOverhead",
    "LatencyStats",
    "ModelResult",
    "OpProfile",
    "Speedup",
    "ThreadSweepResult",
    "bench",
    "bench_in_process",
    "bench_thread_sweep",
    "compare",
    "interleaved_rounds",
    "interleaved_rounds_by_round",
    "load_document",
    "median_round_ratio",
    "parse_batch_sizes",
    "parse_thread_counts",
    "profile_session_ops",
    "ratio",
    "session_runner",
    "shares_thread_pool",
    "speedup_vs_baseline",
    "time_session",
    "timed_loop",
    "to_csv",
]
