"""`edgecnn bench`: latency, throughput, cold start, memory and GFLOP/s of ONNX models on one device.

Several models are timed interleaved by default: all sessions are opened and bound first, then each
round runs a block of every model, the order rotating from round to round. On a shared or throttling
machine the load then changes under all models alike, so their ratios (reported against the first
model, plus the median of per-round ratios, which drift cannot bias) can be trusted even when the
absolute numbers wander. `--no-interleave` times one model after the other instead.

One thread count runs in this process; several run one child process each (see sweep.py).

Public helpers for other benchmark scripts (same code path as `edgecnn bench`) live in timing.py and
speedup.py. Runtime side: numpy, onnx and onnxruntime only; never TensorFlow.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace
from pathlib import Path

from edgecnn.benchmarking.bench_config import BenchConfig, with_device_picks
from edgecnn.benchmarking.measure import (
    MeasureContext,
    Step,
    bench_interleaved,
    bench_model,
    display_names,
    measure_harness_overhead,
    profile_model_ops,
    with_speedups,
)
from edgecnn.benchmarking.memory import memory_method
from edgecnn.benchmarking.notes import PER_SESSION_POOLS, SEQUENTIAL_MODELS, int8_vs_fp32_notes
from edgecnn.benchmarking.results import BenchResult, ModelResult, to_csv
from edgecnn.benchmarking.sweep import ThreadSweepResult, bench_thread_sweep
from edgecnn.core.environment import environment_info
from edgecnn.core.outputs import atomic_dir, dumps_json, refuse_overwrite
from edgecnn.core.progress import Progress, Tracker
from edgecnn.runtime.feeds import DatasetSamples
from edgecnn.runtime.ort_library import import_ort
from edgecnn.runtime.sessions import check_model_file
from edgecnn.runtime.thread_pool import can_share_thread_pool

PROGRESS_TASK = "bench"


def bench(config: BenchConfig, *, progress: Progress | None = None) -> BenchResult | ThreadSweepResult:
    """Benchmark `config.models`: a BenchResult for one thread count, a ThreadSweepResult for several.
    A bundle directory among the models runs its device pick (`edgecnn tune`, see with_device_picks)."""
    config = with_device_picks(config)
    if config.is_thread_sweep:
        return bench_thread_sweep(config, progress=progress)
    return bench_in_process(config, progress=progress)


def shares_thread_pool(config: BenchConfig, threads: int) -> bool:
    """Whether this run's sessions share ORT's process-wide pool: the config wants it and this process
    may still create (or already has) a pool of these sizes."""
    return config.wants_shared_thread_pool() and can_share_thread_pool(
        threads, config.session.inter_op_threads
    )


def _stepper(tracker: Tracker) -> Step:
    """Each step names the work starting now and counts the one before it as done."""
    started = False

    def step(description: str) -> None:
        nonlocal started
        if started:
            tracker.advance(description=f"{PROGRESS_TASK} {description}")
        else:
            tracker.describe(f"{PROGRESS_TASK} {description}")
        started = True

    return step


def per_batch_contexts(ctx: MeasureContext) -> list[MeasureContext]:
    """TensorRT tunes an engine for one batch (its profile's opt shape): one session per timed batch,
    each tuned for the batch it is timed at, each covering every batch asked (min/max), each with its
    own engine-cache folder per precision and batch (a cached engine built for another precision or
    tuned for another batch must not be reused)."""
    config, session = ctx.config, ctx.session_config
    if session.device != "tensorrt":
        return [ctx]
    out = []
    for batch in config.batch_sizes:
        cache = session.trt_engine_cache
        if cache is not None:
            cache = Path(cache) / f"{session.trt_precision}-opt-batch-{batch}"
        out.append(
            replace(
                ctx,
                config=replace(config, batch_sizes=(batch,)),
                session_config=replace(session, trt_opt_batch=batch, trt_engine_cache=cache),
            )
        )
    return out


def _measure_all(ctx: MeasureContext, progress: Progress | None) -> tuple[list[ModelResult], list[str]]:
    parts = [_measure_batches(c, progress) for c in per_batch_contexts(ctx)]
    models = [
        replace(first, results=tuple(r for part in parts for r in part[0][i].results),
                notes=tuple(dict.fromkeys(n for part in parts for n in part[0][i].notes)),
                op_profiles=tuple(p for part in parts for p in part[0][i].op_profiles),
                gpu_memory=max((part[0][i].gpu_memory or {} for part in parts),
                               key=lambda g: g.get("peak_bytes") or 0) or first.gpu_memory)
        for i, first in enumerate(parts[0][0])
    ]  # fmt: skip
    models = with_speedups(models, paired=ctx.config.interleave)
    notes = list(dict.fromkeys(n for part in parts for n in part[1]))
    return models, notes


def _measure_batches(ctx: MeasureContext, progress: Progress | None) -> tuple[list[ModelResult], list[str]]:
    config = ctx.config
    names = display_names(config.models, config.model_runtimes)
    notes: list[str] = []
    if config.interleave:
        total = len(config.batch_sizes) * int(config.rounds or 1)
        with Tracker(progress, PROGRESS_TASK, total) as tracker:
            models = bench_interleaved(config.models, names, ctx, _stepper(tracker))
    else:
        with Tracker(progress, PROGRESS_TASK, len(config.models) * len(config.batch_sizes)) as tracker:
            step = _stepper(tracker)
            models = [
                bench_model(path, name, ctx, step) for path, name in zip(config.models, names, strict=True)
            ]
        if len(models) > 1:
            notes.append(SEQUENTIAL_MODELS)
    if config.op_profile:
        with Tracker(progress, PROGRESS_TASK, len(models) * len(config.batch_sizes)) as tracker:
            step = _stepper(tracker)
            models = [replace(m, op_profiles=profile_model_ops(m, ctx, step)) for m in models]
    return models, notes


def bench_in_process(config: BenchConfig, *, progress: Progress | None = None) -> BenchResult:
    """One thread count (`config.thread_counts[0]`), measured in this process."""
    (threads,) = config.thread_counts
    for i, path in enumerate(config.models):
        if config.model_session(i, config.session).runtime == "ort":
            check_model_file(path)  # other runtimes check their files when they open them
    if config.output_dir is not None:
        refuse_overwrite(
            Path(config.output_dir), config.force, inputs=config.models, kind="bench"
        )  # before minutes of timing, not after
    env = environment_info()
    ort = import_ort()
    shared = shares_thread_pool(config, threads)
    ctx = MeasureContext(
        config=config,
        session_config=config.session_config(threads, shared),
        samples=DatasetSamples(config.data_dir),
        environment=env,
    )
    overhead = measure_harness_overhead(config)
    ort_models = sum(
        config.model_session(i, config.session).runtime == "ort" for i in range(len(config.models))
    )
    run_notes = [PER_SESSION_POOLS] if config.interleave and ort_models > 1 and not shared else []
    run_notes = [*config.device_picks, *run_notes]
    models, measure_notes = _measure_all(ctx, progress)
    result = BenchResult(
        config=config,
        models=tuple(models),
        harness_overhead=overhead,
        environment=env,
        onnxruntime_version=ort.__version__,
        available_providers=tuple(ort.get_available_providers()),
        notes=(),
        memory_method=memory_method(config.interleave and len(config.models) > 1),
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        interleaved=config.interleave,
        intra_op_threads=threads,
        shared_thread_pool=shared,
        progress_reported=progress is not None,
    )
    notes = run_notes + measure_notes + int8_vs_fp32_notes(result.to_document()["models"])
    result = replace(result, notes=tuple(notes))
    if config.output_dir is not None:
        result = _write_outputs(result, Path(config.output_dir))
    return result


def _write_outputs(result: BenchResult, out: Path) -> BenchResult:
    from edgecnn.benchmarking.bench_plots import plot_bench
    from edgecnn.core.plotting import NO_MATPLOTLIB, plotting_available

    plot = plotting_available()
    final = {"json": out / "bench.json", "csv": out / "bench.csv"} | (
        {"plot": out / "bench.png"} if plot else {}
    )
    result = replace(result, files=final, notes=result.notes if plot else (*result.notes, NO_MATPLOTLIB))
    document = result.to_document()
    with atomic_dir(out, force=result.config.force, kind="bench") as tmp:
        (tmp / "bench.json").write_text(dumps_json(document), encoding="utf-8")
        (tmp / "bench.csv").write_text(to_csv(document), encoding="utf-8")
        if plot:
            plot_bench(document, tmp / "bench.png")
    return result
