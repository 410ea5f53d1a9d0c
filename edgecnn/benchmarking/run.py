"""`edgecnn bench`: latency, throughput, cold start, memory and GFLOP/s of ONNX models on one device.

Built like TFLite's benchmark_model / ONNX Runtime's perf test: inputs are prepared and bound to the
device before timing (IOBinding), warmup runs are discarded, and only the inference call sits between
the two `perf_counter_ns` reads. The same loop around an empty call is measured too, so the reported
numbers come with their own floor.

Several models are timed interleaved by default: all sessions are opened and bound first, then each
round runs a block of every model, the order rotating from round to round. On a shared or throttling
machine the load then changes under all models alike, so their ratios (reported against the first
model, plus the median of per-round ratios, which drift cannot bias) can be trusted even when the
absolute numbers wander. `--no-interleave` times one model after the other instead.

Public helpers for other benchmark scripts (same code path as `edgecnn bench`): `session_runner`,
`time_session`, `interleaved_rounds`, `interleaved_rounds_by_round`, `speedup_vs_baseline`.

Runtime side: numpy, onnx and onnxruntime only; never TensorFlow.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import gc
import io
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.benchmarking.op_profile import (
    DEFAULT_PROFILE_RUNS,
    MAX_PROFILE_RUNS,
    OpProfile,
    profile_session_ops,
)
from edgecnn.benchmarking.speedup import ratio
from edgecnn.benchmarking.timing import (
    DEFAULT_ITERATIONS,
    MAX_ITERATIONS,
    LatencyStats,
    block_sizes,
    bound_runner,
    interleave_ns,
    timed_loop,
)
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import PREFIX as METADATA_PREFIX
from edgecnn.core.metadata import ModelMetadata, read_metadata
from edgecnn.core.outputs import atomic_dir, dumps_json, refuse_overwrite, to_jsonable
from edgecnn.runtime import sessions as runtime
from edgecnn.runtime.graph_stats import count_macs
from edgecnn.runtime.target import TARGET_KEY

SCHEMA = "edgecnn.bench"
SCHEMA_VERSION = 1
INPUT_SOURCES = ("auto", "real", "random")
REQUIRED_RESULT_KEYS = ("batch", "p50_ms", "p99_ms", "throughput", "provider")
HARNESS_MIN_ITERATIONS = 2_000
DEFAULT_ROUNDS = 10
BLOCK_WARMUP = 1  # untimed calls at the start of each interleaved block (after switching models)
MAX_ROUNDS = 10_000
VNNI_FLAGS = ("avx512_vnni", "avx512vnni", "avx_vnni", "asimddp", "i8mm")
CSV_FIELDS = (
    "model", "key", "variant", "batch", "provider", "call", "input_source", "iterations", "mean_ms",
    "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "throughput", "gflops",
    "cold_start_ms", "session_create_ms", "first_run_ms", "peak_rss_bytes", "peak_rss_delta_bytes",
    "model_size_bytes", "macs_per_image", "rounds", "speedup_vs_baseline", "mean_speedup_vs_baseline",
    "round_speedup_vs_baseline", "host", "cpu", "onnxruntime",
)  # fmt: skip


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Parse "1,8,64" into (1, 8, 64); anything else is a one-line error."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise EdgecnnError(
            f"--batch must be a comma-separated list of positive integers, like 1,8,64; got {text!r}"
        )
    sizes = []
    for p in parts:
        if not re.fullmatch(r"[+-]?\d+", p):
            raise EdgecnnError(
                f"--batch must be a comma-separated list of positive integers; {p!r} is not one"
            )
        sizes.append(int(p))
    return tuple(sizes)


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[Path, ...]
    batch_sizes: tuple[int, ...] = (1,)
    warmup: int = 10
    iterations: int | None = None  # exactly one of iterations / duration_s; neither = DEFAULT_ITERATIONS
    duration_s: float | None = None
    device: str = "cpu"
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    allow_spinning: bool | None = None
    io_binding: bool = True
    cuda_graphs: bool = False
    trt_fp16: bool = False
    trt_int8: bool = False
    trt_engine_cache: Path | None = None
    device_id: int = 0
    inputs: str = "auto"  # auto: real samples when the metadata names a dataset that is on disk
    data_dir: Path | None = None
    output_dir: Path | None = None  # None: no files (the CLI always passes one)
    force: bool = False
    seed: int = 0
    progress: bool = False
    interleave: bool = True  # rounds of every model in rotating order; False: one model after the other
    rounds: int | None = None  # interleaved rounds per batch; None = min(DEFAULT_ROUNDS, iterations)
    # After the timing, a separate profiled session per model and batch: ORT's per-node kernel times.
    op_profile: bool = False
    op_profile_runs: int = DEFAULT_PROFILE_RUNS

    def __post_init__(self) -> None:
        if not self.models:
            raise EdgecnnError("give at least one .onnx model to benchmark")
        object.__setattr__(self, "models", tuple(Path(m) for m in self.models))
        if not self.batch_sizes:
            raise EdgecnnError("give at least one batch size")
        for b in self.batch_sizes:
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b <= 0:
                raise EdgecnnError(f"batch sizes must be positive integers, got {b!r}")
        if len(set(self.batch_sizes)) != len(self.batch_sizes):
            raise EdgecnnError(f"batch sizes repeat: {','.join(map(str, self.batch_sizes))}")
        if self.warmup < 0:
            raise EdgecnnError("--warmup must be >= 0")
        if self.iterations is not None and self.duration_s is not None:
            raise EdgecnnError("give --iterations or --duration, not both")
        if self.iterations is not None and not 0 < self.iterations <= MAX_ITERATIONS:
            raise EdgecnnError(f"--iterations must be between 1 and {MAX_ITERATIONS}, got {self.iterations}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise EdgecnnError(f"--duration must be a positive number of seconds, got {self.duration_s}")
        if self.iterations is None and self.duration_s is None:
            object.__setattr__(self, "iterations", DEFAULT_ITERATIONS)
        if self.rounds is not None:
            if isinstance(self.rounds, bool) or not 0 < self.rounds <= MAX_ROUNDS:
                raise EdgecnnError(f"--rounds must be between 1 and {MAX_ROUNDS}, got {self.rounds}")
            if not self.interleave:
                raise EdgecnnError("--rounds only applies to interleaved timing; drop it or --no-interleave")
            if self.iterations is not None and self.rounds > self.iterations:
                raise EdgecnnError(
                    f"--rounds {self.rounds} exceeds --iterations {self.iterations}: every round needs "
                    "at least one timed run of each model"
                )
        elif self.interleave:
            object.__setattr__(
                self,
                "rounds",
                DEFAULT_ROUNDS if self.iterations is None else min(DEFAULT_ROUNDS, self.iterations),
            )
        if isinstance(self.op_profile_runs, bool) or not 0 < self.op_profile_runs <= MAX_PROFILE_RUNS:
            raise EdgecnnError(
                f"--profile-runs must be between 1 and {MAX_PROFILE_RUNS}, got {self.op_profile_runs}"
            )
        if self.inputs not in INPUT_SOURCES:
            raise EdgecnnError(f"--inputs must be one of {', '.join(INPUT_SOURCES)}, not {self.inputs!r}")
        if self.cuda_graphs and not self.io_binding:
            raise EdgecnnError("--cuda-graphs needs --io-binding (graphs replay on fixed device buffers)")
        self.session_config()  # validates device and provider options with the runtime's own rules

    def session_config(self) -> runtime.SessionConfig:
        return runtime.SessionConfig(
            device=self.device,
            intra_op_threads=self.intra_op_threads,
            inter_op_threads=self.inter_op_threads,
            allow_spinning=self.allow_spinning,
            cuda_graphs=self.cuda_graphs,
            trt_fp16=self.trt_fp16,
            trt_int8=self.trt_int8,
            trt_engine_cache=self.trt_engine_cache,
            device_id=self.device_id,
            shared_thread_pool=self.shares_thread_pool,
        )

    @property
    def shares_thread_pool(self) -> bool:
        """Interleaved CPU sessions share one ORT thread pool so an idle session's spinning workers
        cannot steal a core from the one being timed (see runtime.can_share_thread_pool). Not when the
        user set spinning (a per-session option), nor on GPUs, nor if this process already fixed a
        pool of other sizes."""
        return (
            self.interleave
            and len(self.models) > 1
            and self.device == "cpu"
            and self.allow_spinning is None
            and runtime.can_share_thread_pool(self.intra_op_threads, self.inter_op_threads)
        )


@dataclass(frozen=True)
class BatchResult:
    batch: int
    provider: str
    call: str  # "iobinding" (pre-bound inputs/outputs) or "run" (numpy in, numpy out, copies per call)
    input_source: str  # "real:<dataset>" or "random"
    warmup: int
    latency: LatencyStats
    throughput: float  # images per second = batch / mean latency
    gflops: float | None  # achieved, 2 FLOPs per MAC
    peak_rss_bytes: int | None
    peak_rss_delta_bytes: int | None  # above the RSS before the model's session was created
    rounds: int = 1  # interleaved rounds the samples came from (1: timed in one sequential block)
    round_p50_ms: tuple[float, ...] = ()  # per-round medians, in round order (empty when sequential)
    # Against the first model of the run at this batch size; > 1 means faster than the baseline.
    speedup_vs_baseline: float | None = None  # baseline p50 / this p50
    mean_speedup_vs_baseline: float | None = None  # baseline mean / this mean
    round_speedup_vs_baseline: float | None = None  # median over rounds of the per-round p50 ratios

    def flat(self) -> dict[str, Any]:
        d = {k: v for k, v in to_jsonable(self).items() if k != "latency"}
        d.update(to_jsonable(self.latency))
        return d


@dataclass(frozen=True)
class ModelResult:
    path: Path
    name: str
    key: str  # what `compare` matches across runs: "<model_name>:<variant>" or the file stem
    variant: str | None
    model_name: str | None
    dataset: str | None
    size_bytes: int
    macs_per_image: int | None
    macs_source: str | None  # "metadata" | "graph" | None
    provider: str
    providers: tuple[str, ...]
    input_name: str
    input_shape: tuple[Any, ...]
    input_type: str
    session_create_ms: float
    first_run_ms: float
    cold_start_ms: float
    session_rss_delta_bytes: int | None
    results: tuple[BatchResult, ...]
    notes: tuple[str, ...]
    op_profiles: tuple[OpProfile, ...] = ()  # one per batch size with --op-profile, else empty


@dataclass(frozen=True)
class HarnessOverhead:
    """The timed loop around an empty Python call: the smallest latency this harness can report."""

    iterations: int
    mean_us: float
    p50_us: float
    p99_us: float


@dataclass(frozen=True)
class BenchResult:
    config: BenchConfig
    models: tuple[ModelResult, ...]
    harness_overhead: HarnessOverhead
    environment: dict[str, Any]
    onnxruntime_version: str
    available_providers: tuple[str, ...]
    notes: tuple[str, ...]
    created_at: str
    memory_method: str = ""
    interleaved: bool = False
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def providers_ran(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.provider for m in self.models for r in m.results))

    def to_document(self) -> dict[str, Any]:
        models = []
        for m in self.models:
            d = to_jsonable(m)
            d["results"] = [r.flat() for r in m.results]
            models.append(d)
        return {
            "kind": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created_at": self.created_at,
            "config": to_jsonable(self.config),
            "onnxruntime": {
                "version": self.onnxruntime_version,
                "available_providers": self.available_providers,
            },
            "providers_ran": self.providers_ran,
            "harness_overhead": to_jsonable(self.harness_overhead),
            "memory_method": self.memory_method,
            "interleaved": self.interleaved,
            "thread_pool": "shared" if self.config.shares_thread_pool else "per-session",
            "block_warmup": BLOCK_WARMUP if self.interleaved else 0,
            "baseline": self.models[0].name if self.models else None,
            "models": models,
            "notes": list(self.notes),
            "environment": self.environment,
            "files": to_jsonable(self.files),
        }


# --------------------------------------------------------------------------------------------------
# MACs from the graph (per image), for the GFLOP/s column when the export metadata does not say.


# --------------------------------------------------------------------------------------------------
# Memory: peak RSS per batch. Linux lets us reset the high-water mark; elsewhere it is the process peak.


def _rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - memory numbers are best effort, never a failure
        return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------------------------------
# Timing


def _empty_call() -> None:
    return None


def measure_harness_overhead(config: BenchConfig) -> HarnessOverhead:
    iterations = max(config.iterations or 0, HARNESS_MIN_ITERATIONS)
    ns = timed_loop(_empty_call, warmup=100, iterations=iterations, duration_s=None)
    us = ns.astype(np.float64) / 1e3
    return HarnessOverhead(
        iterations=int(us.size),
        mean_us=float(us.mean()),
        p50_us=float(np.percentile(us, 50)),
        p99_us=float(np.percentile(us, 99)),
    )


# --------------------------------------------------------------------------------------------------
# Inputs


class _Samples:
    """Real test images per (dataset, shape), loaded once for all models of a run."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, tuple[int, ...]], Any] = {}

    def images(self, meta: ModelMetadata) -> tuple[np.ndarray | None, str]:
        """(uint8 images, why-not) for a model's metadata; images None when no real data is usable."""
        if not meta.dataset:
            return None, "the model's metadata names no dataset"
        key = (meta.dataset, tuple(meta.input_shape))
        if key not in self._cache:
            try:
                from edgecnn.data import load_dataset

                h, w, c = meta.input_shape
                # Never download inside a benchmark: a target device may be offline, and a download
                # would be a surprise side effect of a timing command.
                ds = load_dataset(
                    meta.dataset, self.config.data_dir, image_size=(h, w), channels=c, download=False
                )
                self._cache[key] = ds.x_test
            except EdgecnnError as exc:
                self._cache[key] = str(exc)
            except ImportError as exc:
                self._cache[key] = f"the data module is unavailable ({exc})"
        got = self._cache[key]
        if isinstance(got, str):
            return None, f"dataset {meta.dataset!r} is not available: {got}"
        return got, ""


def _input_args(session: Any) -> list[Any]:
    return list(session.get_inputs())


def make_feeds(
    session: Any,
    meta: ModelMetadata | None,
    batch: int,
    config: BenchConfig,
    samples: _Samples,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], str, str]:
    """(feeds, source, note): real preprocessed images where the metadata allows, random otherwise."""
    args = _input_args(session)
    note = ""
    if config.inputs != "random" and meta is not None and len(args) == 1:
        images, why = samples.images(meta)
        if images is not None and len(images):
            from edgecnn.runtime.preprocess import prepare_batch

            idx = np.arange(batch) % len(images)  # batches larger than the test set repeat it
            x = prepare_batch(images[idx], meta)
            expected = resolve_or_fail(args[0], batch)
            if tuple(x.shape) != expected:
                raise EdgecnnError(
                    f"the model input {args[0].name!r} wants {expected} but its metadata makes images "
                    f"shaped {tuple(x.shape)}; the metadata does not match the graph (re-export)"
                )
            x = x.astype(runtime.numpy_dtype(args[0].type), copy=False)
            return {args[0].name: np.ascontiguousarray(x)}, f"real:{meta.dataset}", ""
        note = why
    elif config.inputs != "random":
        note = (
            "the model has no edgecnn metadata"
            if meta is None
            else "the model has several inputs (real samples feed one image input)"
        )
    if config.inputs == "real":
        raise EdgecnnError(f"--inputs real: cannot make real samples ({note})")
    feeds = {}
    for arg in args:
        shape = resolve_or_fail(arg, batch)
        dtype = runtime.numpy_dtype(arg.type)
        if np.issubdtype(dtype, np.floating):
            feeds[arg.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        elif dtype == np.bool_:
            feeds[arg.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            feeds[arg.name] = rng.integers(0, 10, size=shape).astype(dtype)
    return feeds, "random", (f"random inputs: {note}" if note and config.inputs == "auto" else "")


def resolve_or_fail(arg: Any, batch: int) -> tuple[int, ...]:
    shape = runtime.resolve_shape(arg.shape, batch)
    if shape is None:
        raise EdgecnnError(
            f"model input {arg.name!r} has shape {list(arg.shape)} with unknown dims besides the batch; "
            "bench needs fixed image dims"
        )
    return shape


# --------------------------------------------------------------------------------------------------
# One model


def _model_key(path: Path, meta: ModelMetadata | None) -> str:
    if meta is not None and meta.model_name:
        # A graph made for one CPU (edgecnn optimize) is its own entry, beside the portable one.
        suffix = "@cpu" if TARGET_KEY.removeprefix(METADATA_PREFIX) in meta.extra else ""
        return f"{meta.model_name}:{meta.variant}{suffix}"
    return path.stem


def _display_names(paths: tuple[Path, ...]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    # Two bundles both hold model.onnx: name them by their folder too.
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def _cpu_notes(meta: ModelMetadata | None, provider: str, input_type: str, env: dict[str, Any]) -> list[str]:
    notes = []
    if provider != "CPUExecutionProvider":
        return notes
    variant = meta.variant if meta else None
    if variant == "fp16" or input_type == "tensor(float16)":
        notes.append(
            "FP16 is a GPU variant: ONNX Runtime's CPU provider has FP16 kernels for few ops and inserts "
            "casts around the rest, so expect it no faster (often slower) than FP32 here"
        )
    if variant in ("int8", "dynamic"):
        flags = set(env.get("hardware", {}).get("cpu", {}).get("flags", []))
        if not flags & set(VNNI_FLAGS):
            notes.append("this CPU has no VNNI/dot-product instructions: INT8 kernels run without them")
    if variant == "dynamic":
        notes.append(
            "dynamic quantization re-quantizes activations on every call; ONNX Runtime's dynamic Conv is "
            "often slower than FP32 on CPU"
        )
    return notes


def _check_outputs(arrays: list[np.ndarray], batch: int, name: str) -> None:
    for a in arrays:
        if a.ndim and a.shape[0] != batch:
            raise EdgecnnError(f"{name}: an output has batch {a.shape[0]} for an input batch of {batch}")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            raise EdgecnnError(
                f"{name}: the model produced NaN/inf outputs; its numbers would be meaningless"
            )


@dataclass
class _Opened:
    """One model with its session open and its cold start measured; what both timing modes share."""

    path: Path
    name: str
    meta: ModelMetadata | None
    session: Any
    provider: str
    args: list[Any]
    output_names: list[str]
    notes: list[str]
    macs: int | None
    macs_source: str | None
    rng: np.random.Generator
    rss_before: int | None
    rss_after: int | None
    session_create_ns: int
    first_run_ns: int
    first_feeds: dict[str, np.ndarray]
    first_source: str


@dataclass
class _Prepared:
    """One model at one batch size, inputs bound: `fn` is exactly the timed call."""

    fn: Callable[[], Any]
    call: str
    source: str
    bound: Any


def _open_model(
    path: Path, name: str, config: BenchConfig, samples: _Samples, env: dict[str, Any]
) -> _Opened:
    runtime.check_model_file(path)
    meta = read_metadata(path)
    notes: list[str] = []
    if meta is not None and meta.macs_per_image:
        macs, macs_source = int(meta.macs_per_image), "metadata"
    else:
        macs = count_macs(path)
        macs_source = "graph" if macs else None
    rng = np.random.default_rng(config.seed)
    if meta is not None and config.inputs != "random":
        samples.images(meta)  # load the dataset now, so its arrays are not billed to the model's memory

    gc.collect()
    rss_before = _rss_bytes()
    t0 = time.perf_counter_ns()
    session, provider = runtime.open_session(path, config.session_config(), notes)
    session_create_ns = time.perf_counter_ns() - t0
    rss_after = _rss_bytes()
    args = _input_args(session)
    output_names = [o.name for o in session.get_outputs()]

    # Cold start = session creation + the first inference a user would make (plain run, host arrays).
    feeds, source, note = make_feeds(session, meta, config.batch_sizes[0], config, samples, rng)
    # On a CUDA-graph session a plain run must not capture: the graph would bake in its temporary buffers.
    plain_options = runtime.run_options(-1) if config.cuda_graphs else None
    t0 = time.perf_counter_ns()
    first = session.run(output_names, feeds, plain_options)
    first_run_ns = time.perf_counter_ns() - t0
    _check_outputs(first, config.batch_sizes[0], name)
    if note:
        notes.append(note)
    notes.extend(_cpu_notes(meta, provider, args[0].type if args else "", env))
    return _Opened(
        path=path, name=name, meta=meta, session=session, provider=provider, args=args,
        output_names=output_names, notes=notes, macs=macs, macs_source=macs_source, rng=rng,
        rss_before=rss_before, rss_after=rss_after, session_create_ns=session_create_ns,
        first_run_ns=first_run_ns, first_feeds=feeds, first_source=source,
    )  # fmt: skip


def _prepare(m: _Opened, index: int, batch: int, config: BenchConfig, samples: _Samples) -> _Prepared:
    if index == 0:
        feeds, source = m.first_feeds, m.first_source
    else:
        feeds, source, _ = make_feeds(m.session, m.meta, batch, config, samples, m.rng)
    graph_id = index + 1 if config.cuda_graphs else None  # one captured graph per batch size
    fn, bound = bound_runner(m.session, m.provider, feeds, config.io_binding, config.device_id, graph_id)
    return _Prepared(fn=fn, call="iobinding" if config.io_binding else "run", source=source, bound=bound)


def _batch_result(
    m: _Opened,
    batch: int,
    prepared: _Prepared,
    config: BenchConfig,
    rounds_ns: list[np.ndarray],
    peak: int | None,
) -> BatchResult:
    if prepared.bound is not None:
        _check_outputs(prepared.bound.output_arrays(), batch, m.name)
    stats = LatencyStats.from_ns(np.concatenate(rounds_ns))
    throughput = batch / (stats.mean_ms / 1e3)
    if stats.mean_ms > 0 and (stats.std_ms / stats.mean_ms > 0.5 or stats.p99_ms > 5 * stats.p50_ms):
        m.notes.append(
            f"batch {batch}: noisy timings (std {stats.std_ms / stats.mean_ms:.0%} of the mean, p99 "
            f"{stats.p99_ms / stats.p50_ms:.1f}x p50): something else is using this machine or it "
            "throttles; p50 is the robust number, rerun with more --iterations to confirm"
        )
    interleaved = config.interleave
    return BatchResult(
        batch=batch,
        provider=m.session.get_providers()[0],
        call=prepared.call,
        input_source=prepared.source,
        warmup=config.warmup,
        latency=stats,
        throughput=throughput,
        gflops=(2.0 * m.macs * throughput / 1e9) if m.macs else None,
        peak_rss_bytes=peak,
        peak_rss_delta_bytes=(peak - m.rss_before) if peak is not None and m.rss_before is not None else None,
        rounds=len(rounds_ns) if interleaved else 1,
        round_p50_ms=tuple(float(np.median(r)) / 1e6 for r in rounds_ns) if interleaved else (),
    )


def _model_result(m: _Opened, results: list[BatchResult]) -> ModelResult:
    return ModelResult(
        path=m.path,
        name=m.name,
        key=_model_key(m.path, m.meta),
        variant=m.meta.variant if m.meta else None,
        model_name=m.meta.model_name if m.meta else None,
        dataset=m.meta.dataset if m.meta else None,
        size_bytes=m.path.stat().st_size,
        macs_per_image=m.macs,
        macs_source=m.macs_source,
        provider=m.provider,
        providers=tuple(m.session.get_providers()),
        input_name=m.args[0].name if m.args else "",
        input_shape=tuple(m.args[0].shape) if m.args else (),
        input_type=m.args[0].type if m.args else "",
        session_create_ms=m.session_create_ns / 1e6,
        first_run_ms=m.first_run_ns / 1e6,
        cold_start_ms=(m.session_create_ns + m.first_run_ns) / 1e6,
        session_rss_delta_bytes=(m.rss_after - m.rss_before) if m.rss_after and m.rss_before else None,
        results=tuple(results),
        notes=tuple(dict.fromkeys(m.notes)),
    )


def bench_model(
    path: Path,
    name: str,
    config: BenchConfig,
    samples: _Samples,
    env: dict[str, Any],
    advance: Callable[[str], None] = lambda _desc: None,
) -> ModelResult:
    """One model alone, batch after batch (the `--no-interleave` path)."""
    m = _open_model(path, name, config, samples, env)
    results: list[BatchResult] = []
    for index, batch in enumerate(config.batch_sizes):
        advance(f"{name} batch {batch}")
        prepared = _prepare(m, index, batch, config, samples)
        peak_resettable = _reset_peak_rss()
        samples_ns = timed_loop(prepared.fn, config.warmup, config.iterations, config.duration_s)
        peak = _peak_rss_bytes() if peak_resettable or not results else None
        results.append(_batch_result(m, batch, prepared, config, [samples_ns], peak))
        del prepared
    return _model_result(m, results)


def bench_interleaved(
    paths: Sequence[Path],
    names: Sequence[str],
    config: BenchConfig,
    samples: _Samples,
    env: dict[str, Any],
    advance: Callable[[str], None] = lambda _desc: None,
) -> list[ModelResult]:
    """All models side by side: sessions opened (cold start timed per model, one after the other),
    then per batch size every model bound and warmed up, then `config.rounds` rounds in which each
    model runs its block (iterations / rounds calls, or duration / rounds seconds) in rotated order,
    each block after one untimed call (see `interleave_ns`)."""
    opened = [_open_model(p, n, config, samples, env) for p, n in zip(paths, names, strict=True)]
    rounds = int(config.rounds or 1)
    if config.iterations is not None:
        per_round: list[int] | None = block_sizes(config.iterations, rounds)
        slice_s = None
    else:
        per_round = None
        slice_s = float(config.duration_s or 0) / rounds
    results: list[list[BatchResult]] = [[] for _ in opened]
    for index, batch in enumerate(config.batch_sizes):
        prepared = [_prepare(m, index, batch, config, samples) for m in opened]
        # Peak memory per model from its own warmup at this batch (all sessions are open by now, so it
        # is the process peak with every model loaded); with no warmup, the peak over the rounds.
        peaks: list[int | None] = []
        for p in prepared:
            resettable = _reset_peak_rss()
            for _ in range(config.warmup):
                p.fn()
            peaks.append(_peak_rss_bytes() if resettable and config.warmup else None)
        resettable = _reset_peak_rss()
        rounds_ns = interleave_ns(
            [p.fn for p in prepared],
            rounds,
            per_round,
            slice_s,
            warmup=0,
            block_warmup=BLOCK_WARMUP,
            on_round=lambda r, b=batch: advance(f"batch {b} round {r + 1}/{rounds}"),
        )
        shared_peak = _peak_rss_bytes() if resettable or index == 0 else None
        for i, (m, p) in enumerate(zip(opened, prepared, strict=True)):
            peak = peaks[i] if peaks[i] is not None else shared_peak
            results[i].append(_batch_result(m, batch, p, config, rounds_ns[i], peak))
        del prepared
    return [_model_result(m, r) for m, r in zip(opened, results, strict=True)]


def with_speedups(models: Sequence[ModelResult], paired: bool) -> list[ModelResult]:
    """Each batch result with its ratios against the first model's result at the same batch size."""
    if not models:
        return []
    base = {r.batch: r for r in models[0].results}
    out = []
    for m in models:
        results = []
        for r in m.results:
            b = base.get(r.batch)
            if b is None:
                results.append(r)
                continue
            if paired and b.round_p50_ms and len(b.round_p50_ms) == len(r.round_p50_ms):
                round_median = float(
                    np.median([x / y for x, y in zip(b.round_p50_ms, r.round_p50_ms, strict=True) if y > 0])
                )
            else:
                round_median = None
            results.append(
                replace(
                    r,
                    speedup_vs_baseline=ratio(b.latency.p50_ms, r.latency.p50_ms),
                    mean_speedup_vs_baseline=ratio(b.latency.mean_ms, r.latency.mean_ms),
                    round_speedup_vs_baseline=round_median,
                )
            )
        out.append(replace(m, results=tuple(results)))
    return out


def _pair_ratio(a: dict[str, Any], b: dict[str, Any]) -> tuple[float | None, float | None]:
    """(a p50 / b p50, median over paired rounds of a / b) from two result rows of one run."""
    p50 = ratio(float(a["p50_ms"]), float(b["p50_ms"]))
    ra, rb = a.get("round_p50_ms") or [], b.get("round_p50_ms") or []
    rounds = None
    if ra and len(ra) == len(rb):
        ratios = [x / y for x, y in zip(ra, rb, strict=True) if x > 0 and y > 0]
        rounds = float(np.median(ratios)) if ratios else None
    return p50, rounds


def int8_vs_fp32_notes(models: Sequence[Mapping[str, Any]]) -> list[str]:
    """A note per batch size where a model whose metadata says int8 is slower (p50) than one that
    says fp32 in the same run: quantization that costs time is something to fix, not to ship."""
    notes = []
    int8 = [m for m in models if m.get("variant") == "int8"]
    fp32 = [m for m in models if m.get("variant") == "fp32"]
    for q in int8:
        for f in fp32:
            f_rows = {r["batch"]: r for r in f["results"]}
            for r in q["results"]:
                fr = f_rows.get(r["batch"])
                if fr is None:
                    continue
                slower, per_round = _pair_ratio(r, fr)  # int8 latency / fp32 latency
                if slower is None or slower <= 1.0:
                    continue
                rounds = f", {per_round:.2f}x as the median of per-round ratios" if per_round else ""
                notes.append(
                    f"batch {r['batch']}: INT8 {q['name']} is slower than FP32 {f['name']} in this run "
                    f"(p50 {r['p50_ms']:.3f} vs {fr['p50_ms']:.3f} ms, {slower:.2f}x{rounds}); on this "
                    "CPU the quantized graph costs time (check its QDQ placement, or ship FP32)"
                )
    return notes


# --------------------------------------------------------------------------------------------------
# The whole run


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda _desc: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("bench", total=total)
        started = [False]

        def advance(desc: str) -> None:
            if started[0]:
                progress.advance(task)
            started[0] = True
            progress.update(task, description=f"bench {desc}")

        yield advance
        progress.update(task, completed=total)


def default_output_dir(now: _dt.datetime | None = None) -> Path:
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path(f"bench-{stamp}")


def bench(config: BenchConfig) -> BenchResult:
    from edgecnn.core import environment as sysinfo

    for path in config.models:
        runtime.check_model_file(path)
    if config.output_dir is not None:
        # Refuse before minutes of timing, not after.
        refuse_overwrite(Path(config.output_dir), config.force)
    env = sysinfo.environment_info()
    ort = runtime._import_ort()
    samples = _Samples(config)
    names = _display_names(config.models)
    overhead = measure_harness_overhead(config)
    run_notes: list[str] = []
    if config.interleave and len(config.models) > 1 and not config.shares_thread_pool:
        run_notes.append(
            "each model has its own ONNX Runtime thread pool here (spinning was set, a GPU device, or a "
            "pool of other sizes already exists in this process): an idle session's spinning workers can "
            "add multi-millisecond tails right after a switch between models"
        )
    if config.interleave:
        total = len(config.batch_sizes) * int(config.rounds or 1)
        with _progress(config.progress, total) as advance:
            models = bench_interleaved(config.models, names, config, samples, env, advance)
    else:
        models = []
        with _progress(config.progress, len(config.models) * len(config.batch_sizes)) as advance:
            for path, name in zip(config.models, names, strict=True):
                models.append(bench_model(path, name, config, samples, env, advance))
        if len(models) > 1:
            run_notes.append(
                "models were timed one after the other (--no-interleave): their ratios include any change "
                "in this machine's load between them"
            )
    models = with_speedups(models, paired=config.interleave)
    if config.op_profile:
        with _progress(config.progress, len(models) * len(config.batch_sizes)) as advance:
            models = [replace(m, op_profiles=profile_model_ops(m, config, samples, advance)) for m in models]
    result = BenchResult(
        config=config,
        models=tuple(models),
        harness_overhead=overhead,
        environment=env,
        onnxruntime_version=ort.__version__,
        available_providers=tuple(ort.get_available_providers()),
        notes=(),
        memory_method=_memory_method(config),
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        interleaved=config.interleave,
    )
    run_notes.extend(int8_vs_fp32_notes(result.to_document()["models"]))
    result = replace(result, notes=tuple(run_notes))
    if config.output_dir is not None:
        result = _write_outputs(result, Path(config.output_dir))
    return result


def profile_model_ops(
    model: ModelResult,
    config: BenchConfig,
    samples: _Samples,
    advance: Callable[[str], None] = lambda _desc: None,
) -> tuple[OpProfile, ...]:
    """Per-node kernel times of one benchmarked model at each batch size, from a separate session with
    ORT's profiler on (after the timing, so the profiler never slows a timed run)."""
    meta = read_metadata(model.path)
    rng = np.random.default_rng(config.seed)

    def feeds_for(session: Any, batch: int) -> dict[str, np.ndarray]:
        return make_feeds(session, meta, batch, config, samples, rng)[0]

    profiles = []
    for batch in config.batch_sizes:
        advance(f"profiling {model.name} batch {batch}")
        profile, provider = profile_session_ops(
            # Plain runs: a CUDA-graph session would capture the temporary feed buffers.
            model.path,
            replace(config.session_config(), cuda_graphs=False),
            feeds_for,
            batch,
            runs=config.op_profile_runs,
        )
        if provider != model.provider:
            raise EdgecnnError(
                f"{model.name}: the profiling session ran on {provider}, the timed one on {model.provider}"
            )
        profiles.append(profile)
    return tuple(profiles)


def _memory_method(config: BenchConfig) -> str:
    if not _reset_peak_rss():
        return "peak RSS of the whole process so far (this OS cannot reset the high-water mark)"
    if config.interleave and len(config.models) > 1:
        return (
            "peak RSS per batch: Linux VmHWM, reset before each model's warmup at that batch (over the "
            "interleaved rounds when --warmup is 0), with every model's session open; delta = above the "
            "RSS before that model's session was created"
        )
    return (
        "peak RSS per batch: Linux VmHWM, reset before each batch; delta = above the RSS before the "
        "model's session was created"
    )


def csv_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    hw = document.get("environment", {}).get("hardware", {})
    rows = []
    for m in document["models"]:
        for r in m["results"]:
            row = {**r, **{k: m.get(k) for k in ("key", "variant", "cold_start_ms", "session_create_ms")}}
            row.update(
                model=m["name"],
                first_run_ms=m.get("first_run_ms"),
                model_size_bytes=m.get("size_bytes"),
                macs_per_image=m.get("macs_per_image"),
                host=hw.get("hostname"),
                cpu=hw.get("cpu", {}).get("model"),
                onnxruntime=document.get("onnxruntime", {}).get("version"),
            )
            rows.append({k: row.get(k) for k in CSV_FIELDS})
    return rows


def to_csv(document: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(document):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def _write_outputs(result: BenchResult, out: Path) -> BenchResult:
    from edgecnn.benchmarking.plots import plot_bench

    final = {"json": out / "bench.json", "csv": out / "bench.csv", "plot": out / "bench.png"}
    result = replace(result, files=final)
    document = result.to_document()
    with atomic_dir(out, force=result.config.force) as tmp:
        (tmp / "bench.json").write_text(dumps_json(document), encoding="utf-8")
        (tmp / "bench.csv").write_text(to_csv(document), encoding="utf-8")
        plot_bench(document, tmp / "bench.png")
    return result


def load_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A bench result JSON, validated enough that compare and plots can trust its shape."""
    import json

    path = Path(path)
    if not path.exists():
        raise EdgecnnError(f"result file {path} does not exist")
    if path.is_dir():
        candidate = path / "bench.json"
        if not candidate.exists():
            raise EdgecnnError(f"{path} is a directory without a bench.json")
        path = candidate
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EdgecnnError(f"{path} is not a JSON file") from None
    except OSError as exc:
        raise EdgecnnError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != SCHEMA:
        raise EdgecnnError(f"{path} is not an edgecnn bench result (made by `edgecnn bench`)")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise EdgecnnError(
            f"{path} is a bench result of schema version {doc.get('schema_version')}; "
            f"this edgecnn reads version {SCHEMA_VERSION}"
        )
    models = doc.get("models")
    if not isinstance(models, list) or not all(
        isinstance(m, dict) and isinstance(m.get("results"), list) and "key" in m for m in models
    ):
        raise EdgecnnError(f"{path} is a damaged bench result (no models/results)")
    for m in models:
        for r in m["results"]:
            if not isinstance(r, dict) or not all(k in r for k in REQUIRED_RESULT_KEYS):
                missing = "/".join(REQUIRED_RESULT_KEYS)
                raise EdgecnnError(f"{path} is a damaged bench result (a result lacks {missing})")
    return doc
