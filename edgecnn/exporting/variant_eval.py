"""Measure an exported variant: accuracy on the real test set and a quick latency next to FP32.

numpy + onnxruntime only (through edgecnn.runtime), so it can be reused on the runtime side. The
latency here is a quick side-by-side check for the export report; `edgecnn bench` is the careful one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import OUTPUT_NAME
from edgecnn.runtime.sessions import SessionConfig, open_session


def open_cpu_session(path: Path, threads: int = 0) -> tuple[Any, str]:
    return open_session(path, SessionConfig(device="cpu", intra_op_threads=threads))


def predict_probabilities(
    session: Any, x: np.ndarray, batch_size: int = 256, on_batch: Callable[[int], None] | None = None
) -> np.ndarray:
    """Run `x` (already prepared for the graph) through `session` in batches; float32 probabilities."""
    input_name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    out_name = OUTPUT_NAME if OUTPUT_NAME in outputs else outputs[0]
    chunks = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        chunks.append(np.asarray(session.run([out_name], {input_name: batch})[0], dtype=np.float32))
        if on_batch is not None:
            on_batch(len(batch))
    if not chunks:
        raise EdgecnnError("no images to evaluate")
    return np.concatenate(chunks)


@dataclass(frozen=True)
class Agreement:
    max_abs_diff: float
    top1_agreement: float  # fraction of images whose arg-max class is the same
    n: int


def compare_probabilities(reference: np.ndarray, other: np.ndarray) -> Agreement:
    if reference.shape != other.shape:
        raise EdgecnnError(f"output shapes differ: {reference.shape} vs {other.shape}")
    diff = float(np.max(np.abs(reference.astype(np.float64) - other.astype(np.float64))))
    agree = float(np.mean(np.argmax(reference, axis=1) == np.argmax(other, axis=1)))
    return Agreement(max_abs_diff=diff, top1_agreement=agree, n=int(len(reference)))


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


@dataclass(frozen=True)
class LatencyStats:
    batch_size: int
    median_ms: float
    p90_ms: float
    min_ms: float
    runs: int

    @property
    def per_image_ms(self) -> float:
        return self.median_ms / self.batch_size


def interleaved_latency(
    sessions: dict[str, Any],
    x: np.ndarray,
    batch_sizes: tuple[int, ...] = (1, 64),
    *,
    rounds: int = 30,
    warmup: int = 3,
    on_round: Callable[[], None] | None = None,
) -> dict[str, dict[int, LatencyStats]]:
    """Median latency of every session at every batch size, measured round-robin.

    Round-robin (one run of each variant per round) means a burst of load from other processes on a
    shared CPU hits all variants alike instead of whichever happened to be running, so the
    comparison with FP32 stays fair even when the absolute numbers are noisy.
    """
    if rounds < 1:
        raise EdgecnnError("latency rounds must be >= 1")
    results: dict[str, dict[int, LatencyStats]] = {name: {} for name in sessions}
    for bs in batch_sizes:
        if bs > len(x):
            reps = int(np.ceil(bs / len(x)))
            batch = np.ascontiguousarray(np.concatenate([x] * reps)[:bs])
        else:
            batch = np.ascontiguousarray(x[:bs])
        feeds = {name: {s.get_inputs()[0].name: batch} for name, s in sessions.items()}
        for name, s in sessions.items():
            for _ in range(warmup):
                s.run(None, feeds[name])
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(rounds):
            for name, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, feeds[name])
                times[name].append((time.perf_counter() - t0) * 1000.0)
            if on_round is not None:
                on_round()
        for name, ts in times.items():
            arr = np.asarray(ts)
            results[name][bs] = LatencyStats(
                batch_size=bs,
                median_ms=float(np.median(arr)),
                p90_ms=float(np.percentile(arr, 90)),
                min_ms=float(arr.min()),
                runs=len(ts),
            )
    return results
