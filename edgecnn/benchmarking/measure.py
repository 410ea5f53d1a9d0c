"""Measuring models: open each session (cold start), bind its inputs per batch size, time it alone or
interleaved with the others, and turn the samples into BatchResult/ModelResult.

Built like TFLite's benchmark_model / ONNX Runtime's perf test: inputs are prepared and bound to the
device before timing (IOBinding), warmup runs are discarded, and only the inference call sits between
the two `perf_counter_ns` reads (see timing.py). Runtime side: numpy, onnx, onnxruntime only."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import edgecnn.benchmarking.memory as memory
from edgecnn.benchmarking.bench_config import BLOCK_WARMUP, BenchConfig
from edgecnn.benchmarking.gpu_memory import DeviceMemory
from edgecnn.benchmarking.notes import cpu_notes, gpu_notes, noisy_timing_note
from edgecnn.benchmarking.op_profile import OpProfile, profile_session_ops
from edgecnn.benchmarking.results import BatchResult, HarnessOverhead, ModelResult
from edgecnn.benchmarking.runtimes import BackendSession, open_in_runtime, runtime_record
from edgecnn.benchmarking.speedup import median_round_ratio, ratio
from edgecnn.benchmarking.timing import LatencyStats, block_sizes, bound_runner, interleave_ns, timed_loop
from edgecnn.benchmarking.trt_engine import EngineCacheSnapshot, engine_cold_start, engine_note
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import PREFIX as METADATA_PREFIX
from edgecnn.core.metadata import ModelMetadata, read_metadata
from edgecnn.runtime import io_binding, sessions
from edgecnn.runtime.checked_session import open_checked
from edgecnn.runtime.feeds import DatasetSamples, make_feeds
from edgecnn.runtime.graph_replay import REPLAY_RUNS, check_replay
from edgecnn.runtime.graph_stats import count_macs
from edgecnn.runtime.ort_library import import_ort
from edgecnn.runtime.providers import trt_opt_batch
from edgecnn.runtime.session_config import SessionConfig
from edgecnn.runtime.target import TARGET_KEY
from edgecnn.runtime.trt_qdq import check_trt_int8

HARNESS_MIN_ITERATIONS = 2_000

Step = Callable[[str], None]  # told what is about to be measured, e.g. "model.onnx batch 8"


def _no_step(_description: str) -> None:
    return None


@dataclass(frozen=True)
class MeasureContext:
    """What every measurement of one run shares."""

    config: BenchConfig
    session_config: SessionConfig  # the config's options at this run's thread count and pool
    samples: DatasetSamples
    environment: dict[str, Any]


@dataclass
class BenchModel:
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
    placement: dict[str, Any]  # where its ops ran, in its runtime's own terms
    trt_engine: dict[str, Any] | None
    trt_opt_batch: int | None  # the batch TensorRT's profile is tuned for (None: not on TensorRT)
    runtime: dict[str, Any]
    device_memory: DeviceMemory
    backend: Any = None  # a non-ORT runtime's OpenedModel (runtime.backends); None for ORT


@dataclass
class PreparedBatch:
    """One model at one batch size, inputs bound: `fn` is exactly the timed call."""

    fn: Callable[[], Any]
    call: str
    source: str
    bound: Any


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


def model_key(path: Path, meta: ModelMetadata | None) -> str:
    if meta is not None and meta.model_name:
        # A graph made for one CPU (edgecnn optimize) is its own entry, beside the portable one.
        suffix = "@cpu" if TARGET_KEY.removeprefix(METADATA_PREFIX) in meta.extra else ""
        return f"{meta.model_name}:{meta.variant}{suffix}"
    return path.stem


def display_names(paths: tuple[Path, ...], runtimes: tuple[str, ...] = ()) -> list[str]:
    """One name per model, unique where the models differ: the file name, its folder when two bundles
    both hold model.onnx, and its runtime entry (model.onnx@openvino:bf16) when one file runs in several."""
    shared = {p.name for p in paths if len({q for q in paths if q.name == p.name}) > 1}
    names = [f"{p.parent.name}/{p.name}" if p.name in shared else p.name for p in paths]
    if runtimes and len(set(names)) != len(names):
        names = [f"{n}@{r}" if r and names.count(n) > 1 else n for n, r in zip(names, runtimes, strict=True)]
    return names


def _check_outputs(arrays: list[np.ndarray], batch: int, name: str) -> None:
    for a in arrays:
        if a.ndim and a.shape[0] != batch:
            raise EdgecnnError(f"{name}: an output has batch {a.shape[0]} for an input batch of {batch}")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            raise EdgecnnError(
                f"{name}: the model produced NaN/inf outputs; its numbers would be meaningless"
            )


def _macs(path: Path, meta: ModelMetadata | None) -> tuple[int | None, str | None]:
    if meta is not None and meta.macs_per_image:
        return int(meta.macs_per_image), "metadata"
    macs = count_macs(path)
    return macs, ("graph" if macs else None)


def open_model(path: Path, name: str, ctx: MeasureContext, index: int = 0) -> BenchModel:
    session_config = ctx.config.model_session(index, ctx.session_config)
    if session_config.runtime != "ort":
        return open_in_other_runtime(path, name, ctx, session_config)
    config = ctx.config
    sessions.check_model_file(path)
    meta = read_metadata(path)
    notes: list[str] = []
    macs, macs_source = _macs(path, meta)
    rng = np.random.default_rng(config.seed)
    if meta is not None and config.inputs != "random":
        ctx.samples.images(meta)  # load the dataset now, so its arrays are not billed to the model's memory

    gc.collect()
    rss_before = memory.rss_bytes()
    rss_after: int | None = None
    batch = config.batch_sizes[0]
    made: dict[str, Any] = {}

    def first_feeds(session: Any) -> dict[str, np.ndarray]:
        nonlocal rss_after
        rss_after = memory.rss_bytes()
        feeds, made["source"], made["note"] = make_feeds(
            session, meta, batch, config.inputs, ctx.samples, rng
        )
        return feeds

    if session_config.precision == "int8":  # on ORT: TensorRT's INT8 (SessionConfig allows it nowhere else)
        check_trt_int8(path, name)  # TensorRT's explicit-quantization rules (runtime.trt_qdq)
    cache_before = EngineCacheSnapshot.take(session_config.trt_engine_cache)
    # Cold start = session creation + the first inference a user would make (plain run, host arrays).
    # That run is profiled for placement; the profiler is off for every later (timed) run.
    # On a CUDA-graph session a plain run must not capture: the graph would bake in its temporary buffers.
    checked = open_checked(
        path,
        session_config,
        first_feeds,
        allow_cpu_nodes=config.allow_cpu_nodes,
        notes=notes,
        run_options=io_binding.run_options(-1) if config.session.cuda_graphs else None,
    )
    session, provider = checked.session, checked.provider
    args = list(session.get_inputs())
    output_names = [o.name for o in session.get_outputs()]
    _check_outputs(checked.first_outputs, batch, name)
    if made["note"]:
        notes.append(made["note"])
    notes.extend(gpu_notes(config.op_profile, provider))
    trt_engine = engine_cold_start(provider, cache_before, checked.session_create_ns, checked.first_run_ns)
    engine = engine_note(name, trt_engine, (checked.session_create_ns + checked.first_run_ns) / 1e6)
    if engine:
        notes.append(engine)
    notes.extend(cpu_notes(meta, provider, args[0].type if args else "", ctx.environment))
    on_trt = checked.device == "tensorrt"  # TensorRT's precision and profile applied (else the file's own)
    return BenchModel(
        path=path, name=name, meta=meta, session=session, provider=provider, args=args,
        output_names=output_names, notes=notes, macs=macs, macs_source=macs_source, rng=rng,
        rss_before=rss_before, rss_after=rss_after, session_create_ns=checked.session_create_ns,
        first_run_ns=checked.first_run_ns, first_feeds=checked.first_feeds, first_source=made["source"],
        placement=checked.placement.to_dict(), trt_engine=trt_engine,
        device_memory=DeviceMemory(checked.device),
        trt_opt_batch=trt_opt_batch(session_config) if on_trt else None,
        runtime={"runtime": "ort", "runtime_version": import_ort().__version__, "device": provider,
                 "precision": session_config.trt_precision if on_trt else None,
                 "threads": session_config.threads},
    )  # fmt: skip


def open_in_other_runtime(path: Path, name: str, ctx: MeasureContext, session: SessionConfig) -> BenchModel:
    """A model in OpenVINO or LiteRT, opened through the runtime interface and measured like ORT's."""
    config, batch = ctx.config, ctx.config.batch_sizes[0]
    rng = np.random.default_rng(config.seed)
    gc.collect()
    rss_before = memory.rss_bytes()
    opened = open_in_runtime(path, session)
    rss_after = memory.rss_bytes()
    view = BackendSession(opened.model)
    feeds, source, note = make_feeds(view, opened.meta, batch, config.inputs, ctx.samples, rng)
    t0 = time.perf_counter_ns()
    first = opened.model.run(feeds[opened.model.input_name])
    first_run_ns = time.perf_counter_ns() - t0
    _check_outputs([first], batch, name)
    macs = opened.meta.macs_per_image if opened.meta is not None else None
    return BenchModel(
        path=path, name=name, meta=opened.meta, session=view, provider=opened.model.device,
        args=view.get_inputs(), output_names=[opened.model.output_name], notes=[note] if note else [],
        macs=macs, macs_source="metadata" if macs else None, rng=rng, rss_before=rss_before,
        rss_after=rss_after, session_create_ns=opened.session_create_ns, first_run_ns=first_run_ns,
        first_feeds=feeds, first_source=source, placement=opened.model.placement(), trt_engine=None,
        trt_opt_batch=None, runtime=runtime_record(opened.model), device_memory=DeviceMemory("cpu"),
        backend=opened.model,
    )  # fmt: skip


def prepare(m: BenchModel, index: int, batch: int, ctx: MeasureContext) -> PreparedBatch:
    config = ctx.config
    if index == 0:
        feeds, source = m.first_feeds, m.first_source
    else:
        feeds, source, _ = make_feeds(m.session, m.meta, batch, config.inputs, ctx.samples, m.rng)
    if m.backend is not None:  # another runtime: its own bound call (runtimes.BackendSession)
        return PreparedBatch(
            fn=m.backend.runner(feeds[m.args[0].name]), call="runner", source=source, bound=None
        )
    graph_id = index + 1 if config.session.cuda_graphs else None  # one captured graph per batch size
    fn, bound = bound_runner(
        m.session, m.provider, feeds, config.io_binding, config.session.device_id, graph_id
    )
    if graph_id is not None and bound is not None:
        # A plain run (no capture) is the reference; the replay must match it before it is timed.
        reference = m.session.run(m.output_names, feeds, io_binding.run_options(-1))
        for _ in range(REPLAY_RUNS):
            fn()
        fp16 = m.meta is not None and m.meta.variant == "fp16" or m.runtime["precision"] == "fp16"
        m.notes.append(f"{m.name} batch {batch}: CUDA-graph replay matches a normal run (max |diff| "
                       f"{check_replay(reference, bound.output_arrays(), m.name, fp16):.2g})")  # fmt: skip
    return PreparedBatch(fn=fn, call="iobinding" if config.io_binding else "run", source=source, bound=bound)


def batch_result(
    m: BenchModel,
    batch: int,
    prepared: PreparedBatch,
    config: BenchConfig,
    rounds_ns: list[np.ndarray],
    peak: int | None,
) -> BatchResult:
    if prepared.bound is not None:
        _check_outputs(prepared.bound.output_arrays(), batch, m.name)
    stats = LatencyStats.from_ns(np.concatenate(rounds_ns))
    throughput = batch / (stats.mean_ms / 1e3)
    noisy = noisy_timing_note(batch, stats)
    if noisy:
        m.notes.append(noisy)
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
        placement=m.placement,
        trt_opt_batch=m.trt_opt_batch,
    )


def model_result(m: BenchModel, results: list[BatchResult]) -> ModelResult:
    return ModelResult(
        path=m.path,
        name=m.name,
        key=model_key(m.path, m.meta),
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
        placement=m.placement,
        trt_engine=m.trt_engine,
        gpu_memory=m.device_memory.to_dict(),
        runtime=m.runtime,
    )


def bench_model(path: Path, name: str, ctx: MeasureContext, step: Step = _no_step) -> ModelResult:
    """One model alone, batch after batch (the `--no-interleave` path)."""
    config = ctx.config
    m = open_model(path, name, ctx)
    results: list[BatchResult] = []
    for index, batch in enumerate(config.batch_sizes):
        step(f"{name} batch {batch}")
        prepared = prepare(m, index, batch, ctx)
        peak_resettable = memory.reset_peak_rss()
        samples_ns = timed_loop(prepared.fn, config.warmup, config.iterations, config.duration_s)
        peak = memory.peak_rss_bytes() if peak_resettable or not results else None
        m.device_memory.sample()
        results.append(batch_result(m, batch, prepared, config, [samples_ns], peak))
        del prepared
    return model_result(m, results)


def _warmup_peaks(prepared: list[PreparedBatch], warmup: int) -> list[int | None]:
    """Peak memory per model from its own warmup at this batch (all sessions are open by now, so it
    is the process peak with every model loaded); None with no warmup (then: the peak over the rounds)."""
    peaks: list[int | None] = []
    for p in prepared:
        resettable = memory.reset_peak_rss()
        for _ in range(warmup):
            p.fn()
        peaks.append(memory.peak_rss_bytes() if resettable and warmup else None)
    return peaks


def bench_interleaved(
    paths: Sequence[Path], names: Sequence[str], ctx: MeasureContext, step: Step = _no_step
) -> list[ModelResult]:
    """All models side by side: sessions opened (cold start timed per model, one after the other),
    then per batch size every model bound and warmed up, then `config.rounds` rounds in which each
    model runs its block (iterations / rounds calls, or duration / rounds seconds) in rotated order,
    each block after one untimed call (see `interleave_ns`)."""
    config = ctx.config
    opened = [open_model(p, n, ctx, i) for i, (p, n) in enumerate(zip(paths, names, strict=True))]
    rounds = int(config.rounds or 1)
    per_round = block_sizes(config.iterations, rounds) if config.iterations is not None else None
    slice_s = None if config.iterations is not None else float(config.duration_s or 0) / rounds
    results: list[list[BatchResult]] = [[] for _ in opened]
    for index, batch in enumerate(config.batch_sizes):
        prepared = [prepare(m, index, batch, ctx) for m in opened]
        peaks = _warmup_peaks(prepared, config.warmup)
        resettable = memory.reset_peak_rss()
        rounds_ns = interleave_ns(
            [p.fn for p in prepared],
            rounds,
            per_round,
            slice_s,
            warmup=0,
            block_warmup=BLOCK_WARMUP,
            on_round=lambda r, b=batch: step(f"batch {b} round {r + 1}/{rounds}"),
        )
        shared_peak = memory.peak_rss_bytes() if resettable or index == 0 else None
        for m in opened:
            m.device_memory.sample()  # one process: every model sees the same device total
        for i, (m, p) in enumerate(zip(opened, prepared, strict=True)):
            peak = peaks[i] if peaks[i] is not None else shared_peak
            results[i].append(batch_result(m, batch, p, config, rounds_ns[i], peak))
        del prepared
    return [model_result(m, r) for m, r in zip(opened, results, strict=True)]


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
            results.append(
                replace(
                    r,
                    speedup_vs_baseline=ratio(b.latency.p50_ms, r.latency.p50_ms),
                    mean_speedup_vs_baseline=ratio(b.latency.mean_ms, r.latency.mean_ms),
                    round_speedup_vs_baseline=(
                        median_round_ratio(b.round_p50_ms, r.round_p50_ms) if paired else None
                    ),
                )
            )
        out.append(replace(m, results=tuple(results)))
    return out


def profile_model_ops(
    model: ModelResult, ctx: MeasureContext, step: Step = _no_step
) -> tuple[OpProfile, ...]:
    """Per-node kernel times of one benchmarked model at each batch size, from a separate session with
    ORT's profiler on (after the timing, so the profiler never slows a timed run)."""
    config = ctx.config
    meta = read_metadata(model.path)
    rng = np.random.default_rng(config.seed)

    def feeds_for(session: Any, batch: int) -> dict[str, np.ndarray]:
        return make_feeds(session, meta, batch, config.inputs, ctx.samples, rng)[0]

    profiles = []
    for batch in config.batch_sizes:
        step(f"profiling {model.name} batch {batch}")
        profile, provider = profile_session_ops(
            # Plain runs: a CUDA-graph session would capture the temporary feed buffers.
            model.path,
            replace(ctx.session_config, cuda_graphs=False),
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
