"""`edgecnn bench`: latency, throughput, cold start, memory and GFLOP/s of ONNX models on one device.

Built like TFLite's benchmark_model / ONNX Runtime's perf test: inputs are prepared and bound to the
device before timing (IOBinding), warmup runs are discarded, and only the inference call sits between
the two `perf_counter_ns` reads. The same loop around an empty call is measured too, so the reported
numbers come with their own floor.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn import runtime
from edgecnn.atomic import atomic_dir, dumps_json, refuse_overwrite, to_jsonable
from edgecnn.errors import EdgecnnError
from edgecnn.metadata import ModelMetadata, read_metadata

SCHEMA = "edgecnn.bench"
SCHEMA_VERSION = 1
INPUT_SOURCES = ("auto", "real", "random")
DEFAULT_ITERATIONS = 100
REQUIRED_RESULT_KEYS = ("batch", "p50_ms", "p99_ms", "throughput", "provider")
MAX_ITERATIONS = 1_000_000  # a --duration run stops here too, so the sample list stays bounded
HARNESS_MIN_ITERATIONS = 2_000
VNNI_FLAGS = ("avx512_vnni", "avx512vnni", "avx_vnni", "asimddp", "i8mm")
CSV_FIELDS = (
    "model", "key", "variant", "batch", "provider", "call", "input_source", "iterations", "mean_ms",
    "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "throughput", "gflops",
    "cold_start_ms", "session_create_ms", "first_run_ms", "peak_rss_bytes", "peak_rss_delta_bytes",
    "model_size_bytes", "macs_per_image", "host", "cpu", "onnxruntime",
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
        )


@dataclass(frozen=True)
class LatencyStats:
    iterations: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    total_s: float

    @classmethod
    def from_ns(cls, samples_ns: np.ndarray) -> LatencyStats:
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        if ms.size == 0:
            raise EdgecnnError("no timed iterations")
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        return cls(
            iterations=int(ms.size),
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
            min_ms=float(ms.min()),
            p50_ms=float(p50),
            p90_ms=float(p90),
            p95_ms=float(p95),
            p99_ms=float(p99),
            max_ms=float(ms.max()),
            total_s=float(ms.sum() / 1e3),
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
            "models": models,
            "notes": list(self.notes),
            "environment": self.environment,
            "files": to_jsonable(self.files),
        }


# --------------------------------------------------------------------------------------------------
# MACs from the graph (per image), for the GFLOP/s column when the export metadata does not say.


def count_macs(model: Any) -> int | None:
    """Multiply-accumulates per image of Conv/MatMul/Gemm (and their quantized forms), from onnx shape
    inference with the batch fixed to 1. None when a counted op's shapes stay unknown: a partial count
    would understate the work and overstate nothing, but it would still be a wrong GFLOP/s."""
    import onnx
    from onnx import shape_inference

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    batch = 1
    for inp in graph.input:
        if inp.name in init_names or not inp.type.tensor_type.HasField("shape"):
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims:
            if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                batch = dims[0].dim_value  # a static batch: report per image
            else:
                dims[0].ClearField("dim_param")
                dims[0].dim_value = 1
    try:
        # data_prop resolves Shape->Slice->Concat->Reshape chains that tf2onnx emits before Dense layers.
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - a model shape inference cannot follow just has no MAC count
        return None
    shapes: dict[str, list[int | None]] = {}
    for t in inferred.graph.initializer:
        shapes[t.name] = list(t.dims)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    for node in inferred.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = list(attr.t.dims)

    def known(name: str) -> list[int] | None:
        s = shapes.get(name)
        return None if s is None or any(d is None for d in s) else s  # type: ignore[return-value]

    total = 0
    weight_index = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
    matmul_b_index = {"MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3}
    for node in inferred.graph.node:
        op = node.op_type
        if op in weight_index:
            out, w = known(node.output[0]), known(node.input[weight_index[op]])
            if out is None or w is None:
                return None
            total += math.prod(out) * math.prod(w[1:])
        elif op in matmul_b_index:
            out, a = known(node.output[0]), known(node.input[0])
            if out is None or a is None:
                return None
            total += math.prod(out) * a[-1]
        elif op == "Gemm":
            out, a = known(node.output[0]), known(node.input[0])
            if out is None or a is None:
                return None
            trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
            total += math.prod(out) * (a[0] if trans_a else a[-1])
    return total // batch if total else None


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


def timed_loop(
    fn: Callable[[], Any], warmup: int, iterations: int | None, duration_s: float | None
) -> np.ndarray:
    """Per-call latencies in ns. Only `fn()` sits between the two clock reads; the collector is off
    so a garbage collection pause is not billed to whatever call it happens to interrupt."""
    clock = time.perf_counter_ns
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if iterations is not None:
            samples = [0] * iterations
            for i in range(iterations):
                t0 = clock()
                fn()
                samples[i] = clock() - t0
        else:
            samples = []
            append = samples.append
            deadline = clock() + int(float(duration_s or 0) * 1e9)
            while True:
                t0 = clock()
                fn()
                t1 = clock()
                append(t1 - t0)
                if t1 >= deadline or len(samples) >= MAX_ITERATIONS:
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(samples, dtype=np.int64)


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
            from edgecnn.preprocess import prepare_batch

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
        return f"{meta.model_name}:{meta.variant}"
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


def bench_model(
    path: Path,
    name: str,
    config: BenchConfig,
    samples: _Samples,
    env: dict[str, Any],
    advance: Callable[[str], None] = lambda _desc: None,
) -> ModelResult:
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

    results = []
    for index, batch in enumerate(config.batch_sizes):
        advance(f"{name} batch {batch}")
        if batch != config.batch_sizes[0]:
            feeds, source, _ = make_feeds(session, meta, batch, config, samples, rng)
        if config.io_binding:
            graph_id = index + 1 if config.cuda_graphs else None  # one captured graph per batch size
            bound = runtime.bind_io(session, provider, feeds, config.device_id, graph_id)
            call, fn = "iobinding", bound.run
        else:
            bound = None

            def fn(_f: dict[str, np.ndarray] = feeds) -> Any:
                return session.run(output_names, _f)

            call = "run"
        peak_resettable = _reset_peak_rss()
        samples_ns = timed_loop(fn, config.warmup, config.iterations, config.duration_s)
        peak = _peak_rss_bytes() if peak_resettable or len(results) == 0 else None
        if bound is not None:
            _check_outputs(bound.output_arrays(), batch, name)
        stats = LatencyStats.from_ns(samples_ns)
        throughput = batch / (stats.mean_ms / 1e3)
        results.append(
            BatchResult(
                batch=batch,
                provider=session.get_providers()[0],
                call=call,
                input_source=source,
                warmup=config.warmup,
                latency=stats,
                throughput=throughput,
                gflops=(2.0 * macs * throughput / 1e9) if macs else None,
                peak_rss_bytes=peak,
                peak_rss_delta_bytes=(peak - rss_before)
                if peak is not None and rss_before is not None
                else None,
            )
        )
        del bound
        if stats.mean_ms > 0 and (stats.std_ms / stats.mean_ms > 0.5 or stats.p99_ms > 5 * stats.p50_ms):
            notes.append(
                f"batch {batch}: noisy timings (std {stats.std_ms / stats.mean_ms:.0%} of the mean, p99 "
                f"{stats.p99_ms / stats.p50_ms:.1f}x p50): something else is using this machine or it "
                "throttles; p50 is the robust number, rerun with more --iterations to confirm"
            )
    return ModelResult(
        path=path,
        name=name,
        key=_model_key(path, meta),
        variant=meta.variant if meta else None,
        model_name=meta.model_name if meta else None,
        dataset=meta.dataset if meta else None,
        size_bytes=path.stat().st_size,
        macs_per_image=macs,
        macs_source=macs_source,
        provider=provider,
        providers=tuple(session.get_providers()),
        input_name=args[0].name if args else "",
        input_shape=tuple(args[0].shape) if args else (),
        input_type=args[0].type if args else "",
        session_create_ms=session_create_ns / 1e6,
        first_run_ms=first_run_ns / 1e6,
        cold_start_ms=(session_create_ns + first_run_ns) / 1e6,
        session_rss_delta_bytes=(rss_after - rss_before) if rss_after and rss_before else None,
        results=tuple(results),
        notes=tuple(dict.fromkeys(notes)),
    )


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
    from edgecnn import sysinfo

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
    models = []
    with _progress(config.progress, len(config.models) * len(config.batch_sizes)) as advance:
        for path, name in zip(config.models, names, strict=True):
            models.append(bench_model(path, name, config, samples, env, advance))
    result = BenchResult(
        config=config,
        models=tuple(models),
        harness_overhead=overhead,
        environment=env,
        onnxruntime_version=ort.__version__,
        available_providers=tuple(ort.get_available_providers()),
        notes=(),
        memory_method=(
            "peak RSS per batch: Linux VmHWM, reset before each batch; delta = above the RSS before the "
            "model's session was created"
            if _reset_peak_rss()
            else "peak RSS of the whole process so far (this OS cannot reset the high-water mark)"
        ),
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    if config.output_dir is not None:
        result = _write_outputs(result, Path(config.output_dir))
    return result


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
    from edgecnn.plots_bench import plot_bench

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
