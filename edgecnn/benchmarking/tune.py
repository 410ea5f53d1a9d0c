"""`edgecnn tune BUNDLE`: on the device itself, pick the (file, runtime, precision hint) and thread count
that run fastest per batch size, among the candidates that still compute what export measured, and
record it in device.json.

Candidates (tune_candidates): the FP32 model in ONNX Runtime (so the pick is never slower than the
bundle's own ORT FP32) and every file that carries export's measured accuracy in its metadata
(model.int8*.onnx, `optimize`d copies, .tflite files), in every installed runtime that opens it (ORT
and OpenVINO f32/bf16 for .onnx, LiteRT for .tflite). Each is first re-evaluated here on exactly the
images export used: on CPUs without VNNI, ORT's U8S8 kernels can saturate (VPMADDUBSW) and silently lose
accuracy, so a file more than `tolerance_pp` away from export's number is rejected with the reason, and
every candidate must stay within the accuracy bound of FP32 measured here. The survivors
are timed by `edgecnn bench` (interleaved rounds, so load from other processes hits every candidate
alike; one child process per thread count); per batch and thread count the close finalists are then
re-timed head to head and decided by paired rounds (tune_finalists). `plan_tune` measures the work
first (the command prints the estimate), progress goes to an optional callback, and `--images` /
`--rounds` trade time for certainty (benchmarking.tune_plan: the sample and the interval it gives).
Runtime side: never TensorFlow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.benchmarking.gpu_tune import GPU_DEVICES
from edgecnn.benchmarking.tune_candidates import (
    FP32_FILE,
    Candidate,
    bundle_files,
    check_accuracy,
    check_drop,
    export_doc,
    skipped_runtimes,
    with_runtimes,
)
from edgecnn.benchmarking.tune_finalists import CellDecision, FinalistTiming, retime_finalists
from edgecnn.benchmarking.tune_plan import CONFIDENCE, WARMUP_CALLS, TuneEstimate
from edgecnn.core.accuracy_bound import DEFAULT_MAX_ACCURACY_DROP_PP
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, show_path
from edgecnn.core.metadata import ModelMetadata
from edgecnn.core.outputs import atomic_write_json, refuse_overwrite, to_jsonable
from edgecnn.core.ownership import add_to_marker
from edgecnn.core.progress import Progress, Tracker
from edgecnn.runtime.device_record import DEVICE_JSON, DEVICE_SCHEMA
from edgecnn.runtime.session_config import SessionConfig, unsupported_precision

MAX_THREADS = 64
TUNE_DEVICES = ("cpu", *GPU_DEVICES)  # where tune measures: the CPU, or a GPU (gpu_tune.py)


@dataclass(frozen=True)
class TuneConfig:
    bundle: Path
    batch_sizes: tuple[int, ...] = (1, 64)
    thread_counts: tuple[int, ...] = ()  # () = 1 up to this process's usable cores (at most 4)
    rounds: int = 7
    round_seconds: float = 0.1  # per candidate per round
    tolerance_pp: float = 0.1  # device accuracy vs export's, on the same images
    # Largest accuracy drop vs FP32 (pp, measured here) a pick may have; None: export's
    # --max-accuracy-drop when it had one, else edgecnn's auto default.
    max_accuracy_drop: float | None = None
    data_dir: Path | None = None
    force: bool = False
    # The device (cpu; cuda | tensorrt: FP32/FP16 (+ INT8-TRT), with and without CUDA graphs, see
    # gpu_tune) and runtime options candidates are timed with; threads come from thread_counts and
    # the precision is what tune tries, so neither is set here.
    session: SessionConfig = field(default_factory=SessionConfig)
    images: int | None = None  # accuracy check on a random sample of export's images; None = all of them
    # Runtimes whose candidates tune times; () = every installed one (runtime.backends).
    runtime_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "bundle", Path(self.bundle))
        check_input_file(self.bundle, "bundle", allow_dir=True)
        if self.session.device not in TUNE_DEVICES:
            takes = f"{', '.join(TUNE_DEVICES[:-1])} or {TUNE_DEVICES[-1]}"
            raise EdgecnnError(f"tune --device takes {takes}, not {self.session.device!r}")
        if self.session.threads or self.session.precision is not None:
            raise EdgecnnError(
                "tune tries its own thread counts (--threads 1,2) and, on a GPU, precisions: "
                "set neither on its session"
            )
        if self.session.device != "cpu" and (self.thread_counts or self.runtime_list):
            # A GPU tune times ORT's providers at their own threading: neither list would be applied.
            given = "--threads" if self.thread_counts else "--runtimes"
            raise EdgecnnError(f"{given} is for a CPU tune; --device {self.session.device} tunes ONNX "
                               "Runtime's GPU providers (FP32/FP16/INT8 x CUDA graphs)")  # fmt: skip
        if not self.bundle.is_dir() or not (self.bundle / FP32_FILE).is_file():
            raise EdgecnnError(f"{show_path(self.bundle)} is not an export bundle (no {FP32_FILE} in it)")
        if not self.batch_sizes or any(isinstance(b, bool) or b < 1 for b in self.batch_sizes):
            raise EdgecnnError("--batch takes positive batch sizes, like 1,64")
        if any(isinstance(t, bool) or not 1 <= t <= MAX_THREADS for t in self.thread_counts):
            raise EdgecnnError(f"--threads takes counts from 1 to {MAX_THREADS}")
        if self.images is not None and (isinstance(self.images, bool) or self.images < 1):
            raise EdgecnnError(f"--images must be a positive number of images, got {self.images}")
        if self.rounds < 1 or self.round_seconds <= 0:
            raise EdgecnnError("--rounds and --round-seconds must be positive")
        if not 0 <= self.tolerance_pp <= 5:
            raise EdgecnnError("--tolerance is in percentage points, between 0 and 5")
        if self.max_accuracy_drop is not None and not 0 <= self.max_accuracy_drop <= 100:
            raise EdgecnnError("--max-accuracy-drop is in percentage points, between 0 and 100")
        refuse_overwrite(self.bundle / DEVICE_JSON, self.force, what="device record", kind="device_pick")

    def runtimes(self) -> list[str]:
        """ORT (the FP32 reference) and the runtimes asked for, or every installed one."""
        from edgecnn.runtime.backends.registry import get_backend, installed_runtimes

        if not self.runtime_list:
            return installed_runtimes()
        for name in self.runtime_list:
            get_backend(name).require()  # an unknown or missing runtime asked for: one line
        return ["ort", *(r for r in dict.fromkeys(self.runtime_list) if r != "ort")]

    def threads(self) -> tuple[int, ...]:
        if self.thread_counts:
            return tuple(dict.fromkeys(self.thread_counts))
        from edgecnn.core.environment import cpu_info

        return tuple(range(1, min(4, cpu_info()["usable_cores"] or 1) + 1))


@dataclass(frozen=True)
class TuneResult:
    config: TuneConfig
    isa_class: str
    eval_images: int
    candidates: tuple[Candidate, ...]
    max_accuracy_drop: float
    picks: dict[int, dict[str, Any]]
    record_path: Path
    target: dict[str, Any]
    environment: dict[str, Any]
    accuracy_check: dict[str, Any] = field(default_factory=dict)  # images, of how many, confidence
    estimate: dict[str, Any] = field(default_factory=dict)  # TuneEstimate.to_dict(): what was expected
    wall_s: float | None = None  # what it took (accuracy check and timing)
    notes: tuple[str, ...] = ()
    skipped_runtimes: tuple[str, ...] = ()  # one line per runtime not installed here, naming its extra
    finalists: tuple[CellDecision, ...] = ()  # per (batch, threads): how its best was decided

    def to_document(self) -> dict[str, Any]:
        doc = {"kind": DEVICE_SCHEMA, "schema_version": 1, **to_jsonable(self)}
        doc["picks"] = {str(b): p for b, p in self.picks.items()}
        return doc


def accuracy_bound(config: TuneConfig) -> float:
    """The pick's largest accuracy drop vs FP32 in pp: the option, export's bound, or auto's default."""
    if config.max_accuracy_drop is not None:
        return config.max_accuracy_drop
    recorded = export_doc(config.bundle).get("max_accuracy_drop")
    return float(recorded) if isinstance(recorded, (int, float)) else DEFAULT_MAX_ACCURACY_DROP_PP


def _test_images(meta: ModelMetadata, n: int | None, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    from edgecnn.data import load_dataset

    if not meta.dataset:
        raise EdgecnnError("the bundle's metadata names no dataset: tune needs its test images")
    h, w, c = meta.input_shape
    try:
        ds = load_dataset(meta.dataset, data_dir, image_size=(h, w), channels=c, download=False)
    except EdgecnnError as exc:
        raise EdgecnnError(f"tune needs {meta.dataset}'s test images on this device: {exc}") from None
    x, y = np.asarray(ds.x_test), np.asarray(ds.y_test)
    return (x, y) if n is None else (x[:n], y[:n])


def time_candidates(
    bundle: Path, cands: list[Candidate], cfg: TuneConfig, progress: Progress | None = None
) -> None:
    """Median ms of every accepted candidate at every (batch, threads), timed by `edgecnn bench` itself:
    one child process per thread count (benchmarking.sweep.run_in_child), the candidates interleaved
    in rounds on real test images. Each child owns ORT's process-wide pool at its size, so the timing
    runs with ORT's default spinning and no idle session's spinning workers steal the timed one's core:
    the settings predict, eval and bench run the pick with. (Per-session pools with spinning off, the
    earlier way, timed 2 threads up to 1.9x slower than they run, e.g. tf1-cnn INT8 at batch 1.)"""
    from edgecnn.benchmarking.bench_config import BenchConfig
    from edgecnn.benchmarking.sweep import run_in_child

    accepted = [c for c in cands if c.accepted]
    bar = Tracker(progress, "tune timing", len(cfg.threads()), "timing")
    for threads in cfg.threads():
        bar.describe(f"timing {len(accepted)} candidates, --threads {threads}")
        config = BenchConfig(
            models=tuple(bundle / c.file for c in accepted),
            model_runtimes=tuple(c.bench_runtime for c in accepted),
            batch_sizes=cfg.batch_sizes,
            warmup=WARMUP_CALLS,
            duration_s=cfg.rounds * cfg.round_seconds,
            rounds=cfg.rounds,
            session=cfg.session,
            thread_counts=(threads,),
            inputs="real",
            data_dir=cfg.data_dir,
        )
        document = run_in_child(config)
        for cand, model in zip(accepted, document["models"], strict=True):
            for row in model["results"]:
                cand.latency_ms.setdefault(int(row["batch"]), {})[threads] = float(row["p50_ms"])
                rounds = tuple(float(v) for v in row.get("round_p50_ms") or ())
                cand.round_ms.setdefault(int(row["batch"]), {})[threads] = rounds
        bar.advance()
    bar.finish()


def finalist_timing(cfg: TuneConfig) -> FinalistTiming:
    cells = tuple((b, t) for t in cfg.threads() for b in cfg.batch_sizes)
    return FinalistTiming(cells, cfg.rounds, cfg.round_seconds, cfg.session, cfg.data_dir)


def first_pass_decisions(cands: list[Candidate], batches: tuple[int, ...]) -> list[CellDecision]:
    """Per (batch, threads) the fastest median, no second pass (GPU options: one timing each)."""
    out = []
    for b in batches:
        for t in sorted({t for c in cands if c.accepted for t in c.latency_ms.get(b, {})}):
            timed = [c for c in cands if c.accepted and t in c.latency_ms.get(b, {})]
            best = min(timed, key=lambda c: c.latency_ms[b][t])
            out.append(CellDecision(b, t, best.label, (best.label,), best.label, best.latency_ms[b][t]))
    return out


def choose(
    cands: list[Candidate], batches: tuple[int, ...], cells: list[CellDecision]
) -> dict[int, dict[str, Any]]:
    """Per batch, the thread count whose cell winner ran fastest (in the pass that decided it; thread
    counts run in separate processes, so this one comparison is unpaired), with ORT FP32's best beside."""
    picks: dict[int, dict[str, Any]] = {}
    fp32 = next(c for c in cands if c.variant == "fp32")
    by_label = {c.label: c for c in cands}
    for b in batches:
        cell = min((d for d in cells if d.batch == b), key=lambda d: d.winner_ms)
        best, threads, ms = by_label[cell.winner], cell.threads, cell.winner_ms
        fp32_ms = min(fp32.latency_ms[b].values())
        picks[b] = {
            "variant": best.variant,
            "file": best.file,
            "runtime": best.runtime,
            "precision": best.precision,
            "threads": threads,
            "p50_ms": ms,
            "fp32_p50_ms": fp32_ms,
            "speedup_vs_fp32": fp32_ms / ms,
            "decided_by": "paired finalist rounds" if cell.rounds else "first pass",
            # What bench timed it with: ORT's default spinning (see time_candidates).
            "session": {
                "runtime": best.runtime,
                "precision": best.precision,
                "threads": threads,
                "allow_spinning": None,
            },
        }
    return picks


@dataclass(frozen=True)
class TunePlan:
    """What `tune` will do, measured before it starts: the candidates, the accuracy images (all of
    export's or a sample) and the estimate from one short FP32 timing."""

    candidates: list[Candidate]
    x: np.ndarray
    y: np.ndarray
    export_images: int
    estimate: TuneEstimate
    notes: tuple[str, ...]
    started: float  # time.perf_counter() when planning began: the result's wall_s counts from here
    skipped_runtimes: tuple[str, ...] = ()


def plan_tune(config: TuneConfig) -> TunePlan:
    from edgecnn.benchmarking.tune_plan import probe, sample_indices

    started = time.perf_counter()
    notes: list[str] = []
    files, meta, n = bundle_files(config.bundle, notes)
    runtimes = config.runtimes() if config.session.device == "cpu" else ["ort"]  # GPUs: ORT's providers
    cands = with_runtimes(files, runtimes, bf16=unsupported_precision("bf16") is None)
    skipped = tuple(skipped_runtimes(files)) if not config.runtime_list else ()
    loading = time.perf_counter()
    x, y = _test_images(meta, n, config.data_dir)
    data_load_s = time.perf_counter() - loading
    total = len(y)  # the images export evaluated on (the whole test set when it did not say)
    if config.images is not None and config.images > total:
        raise EdgecnnError(f"--images {config.images} exceeds the {total} images export evaluated on")
    keep = sample_indices(total, config.images)
    x, y = x[keep], y[keep]
    measured = probe(config.bundle / FP32_FILE, x, data_load_s)
    estimate = TuneEstimate(
        images=len(y),
        export_images=total,
        candidates=len(cands),
        thread_counts=len(config.threads()),
        batch_sizes=config.batch_sizes,
        rounds=config.rounds,
        round_seconds=config.round_seconds,
        fp32_ms_per_image=measured.ms_per_image,
        open_s=measured.open_s,
        child_start_s=measured.child_start_s,
    )
    return TunePlan(cands, x, y, total, estimate, tuple(notes), started, skipped)


def tune(config: TuneConfig, progress: Progress | None = None, plan: TunePlan | None = None) -> TuneResult:
    from edgecnn.core.environment import environment_info
    from edgecnn.core.isa import this_isa_class
    from edgecnn.runtime.target import current_cpu_target

    bundle = config.bundle
    plan = plan or plan_tune(config)
    cands, y = plan.candidates, plan.y
    if config.session.device != "cpu":
        from edgecnn.benchmarking.gpu_tune import gpu_candidates

        cands = gpu_candidates(config, plan.x, y, accuracy_bound(config), Candidate)
    else:
        check_accuracy(bundle, cands, plan.x, y, config.tolerance_pp, plan.export_images, progress)
        fp32 = cands[0]
        if not fp32.accepted:
            raise EdgecnnError(
                f"FP32 scores {fp32.device_accuracy or 0:.2%} here but {fp32.export_accuracy or 0:.2%} at "
                "export on the same images: the test images differ from export's (--data-dir?); "
                "nothing recorded"
            )
        check_drop(cands, accuracy_bound(config))
        time_candidates(bundle, cands, config, progress)
    cells = (
        retime_finalists(bundle, cands, finalist_timing(config), progress)
        if config.session.device == "cpu"
        else first_pass_decisions(cands, config.batch_sizes)
    )
    result = TuneResult(
        config=config,
        isa_class=this_isa_class(),
        eval_images=len(y),
        candidates=tuple(cands),
        max_accuracy_drop=accuracy_bound(config),
        picks=choose(cands, config.batch_sizes, cells),
        record_path=bundle / DEVICE_JSON,
        target=current_cpu_target(),
        environment=environment_info(),
        accuracy_check={
            "images": len(y),
            "of": plan.export_images,
            "sample": "all" if len(y) >= plan.export_images else "seeded random (tune_plan.SAMPLE_SEED)",
            "confidence": CONFIDENCE,
            "rule": "rejected when the whole interval of the difference from export is beyond the tolerance",
        },
        estimate=plan.estimate.to_dict(),
        wall_s=time.perf_counter() - plan.started,
        notes=plan.notes,
        skipped_runtimes=plan.skipped_runtimes,
        finalists=tuple(cells),
    )
    atomic_write_json(result.record_path, result.to_document(), force=config.force)
    add_to_marker(result.record_path)  # the bundle stays replaceable by `export --force`
    return result
