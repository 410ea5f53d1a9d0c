"""What `edgecnn bench` found, as typed results, and their files: bench.json (the document every other
tool reads), bench.csv (one row per model and batch), and the reader that validates a saved result."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.benchmarking.bench_config import BLOCK_WARMUP, BenchConfig
from edgecnn.benchmarking.op_profile import OpProfile
from edgecnn.benchmarking.timing import LatencyStats
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, show_path
from edgecnn.core.outputs import to_jsonable

SCHEMA = "edgecnn.bench"
SCHEMA_VERSION = 1
REQUIRED_RESULT_KEYS = ("batch", "p50_ms", "p99_ms", "throughput", "provider")
CSV_FIELDS = (
    "model", "key", "variant", "batch", "provider", "call", "input_source", "iterations", "mean_ms",
    "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "throughput", "gflops",
    "cold_start_ms", "session_create_ms", "first_run_ms", "peak_rss_bytes", "peak_rss_delta_bytes",
    "model_size_bytes", "macs_per_image", "rounds", "speedup_vs_baseline", "mean_speedup_vs_baseline",
    "round_speedup_vs_baseline", "host", "cpu", "onnxruntime",
)  # fmt: skip


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
    # Where the nodes of the session that ran this batch really ran (runtime.placement, to_dict()).
    placement: dict[str, Any] = field(default_factory=dict)
    # TensorRT only: the batch its optimization profile was tuned for (opt shape); None elsewhere.
    trt_opt_batch: int | None = None

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
    placement: dict[str, Any] = field(default_factory=dict)  # of the model's session (first batch)
    # TensorRT only: whether the engine was built or loaded from the cache, and the build's cold start.
    trt_engine: dict[str, Any] | None = None
    # Peak device memory of this process over the model's timed batches (benchmarking.gpu_memory):
    # {"peak_bytes", "method", "reason"}; peak_bytes None on CPU runs, with the reason.
    gpu_memory: dict[str, Any] | None = None
    # The runtime that ran it: runtime, runtime_version, device, precision (hint applied), threads.
    runtime: dict[str, Any] = field(default_factory=dict)


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
    intra_op_threads: int = 0  # the one count of config.thread_counts this run used
    shared_thread_pool: bool = False  # whether its sessions shared ORT's process-wide pool
    progress_reported: bool = False  # whether a progress callback was given

    @property
    def providers_ran(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.provider for m in self.models for r in m.results))

    def config_document(self) -> dict[str, Any]:
        """The config as bench.json records it: the one thread count this run used, in the place and
        under the name `intra_op_threads` always had, and whether progress was shown."""
        doc: dict[str, Any] = {}
        for key, value in to_jsonable(self.config).items():
            if key == "session":
                # Flat, as bench.json always had them; the run's one thread count is intra_op_threads.
                doc.update({k: v for k, v in value.items() if k != "threads"})
            elif key == "thread_counts":
                doc["intra_op_threads"] = self.intra_op_threads
            elif key == "interleave":
                doc["progress"] = self.progress_reported
                doc[key] = value
            else:
                doc[key] = value
        return doc

    def to_dict(self) -> dict[str, Any]:
        """The same document the command saves as JSON, in plain JSON types (the public API's name)."""
        from edgecnn.core.outputs import to_jsonable

        return to_jsonable(self.to_document())

    def to_document(self) -> dict[str, Any]:
        models = []
        for m in self.models:
            d = to_jsonable(m)
            d["results"] = [r.flat() for r in m.results]
            d["placement_summary"] = m.placement.get("summary")
            models.append(d)
        return {
            "kind": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created_at": self.created_at,
            "config": self.config_document(),
            "onnxruntime": {
                "version": self.onnxruntime_version,
                "available_providers": self.available_providers,
            },
            "providers_ran": self.providers_ran,
            "harness_overhead": to_jsonable(self.harness_overhead),
            "memory_method": self.memory_method,
            "interleaved": self.interleaved,
            "thread_pool": "shared" if self.shared_thread_pool else "per-session",
            "block_warmup": BLOCK_WARMUP if self.interleaved else 0,
            "baseline": self.models[0].name if self.models else None,
            "models": models,
            "notes": list(self.notes),
            "environment": self.environment,
            "files": to_jsonable(self.files),
        }


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


def load_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A bench result JSON, validated enough that compare and plots can trust its shape."""
    path = check_input_file(path, "result file", allow_dir=True)
    if path.is_dir():
        candidate = path / "bench.json"
        if not candidate.exists():
            raise EdgecnnError(f"{show_path(path)} is a directory without a bench.json")
        path = check_input_file(candidate, "result file")
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
    _check_models(path, doc.get("models"))
    return doc


def _check_models(path: Path, models: Any) -> None:
    if not isinstance(models, list) or not all(
        isinstance(m, dict) and isinstance(m.get("results"), list) and "key" in m for m in models
    ):
        raise EdgecnnError(f"{path} is a damaged bench result (no models/results)")
    if not models or not any(m["results"] for m in models):
        raise EdgecnnError(f"{path} holds no models or no results: nothing to compare")
    for m in models:
        for r in m["results"]:
            if not isinstance(r, dict) or not all(k in r for k in REQUIRED_RESULT_KEYS):
                missing = "/".join(REQUIRED_RESULT_KEYS)
                raise EdgecnnError(f"{path} is a damaged bench result (a result lacks {missing})")
            _check_measured(path, m, r)


def _check_measured(path: Path, model: dict[str, Any], result: dict[str, Any]) -> None:
    """A latency or throughput of 0 (or negative, NaN) was never measured: any ratio built on it lies."""
    for key in ("p50_ms", "p99_ms", "throughput"):
        value = result.get(key)
        if not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
            raise EdgecnnError(
                f"{path} is a damaged bench result: {model.get('key')} batch {result.get('batch')} has "
                f"{key} {value!r}, not a measured positive number"
            )
