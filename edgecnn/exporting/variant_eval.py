"""Measure an exported variant: accuracy on the real test set and a quick latency next to FP32.

numpy + onnxruntime only (through edgecnn.runtime), so it can be reused on the runtime side. The
latency here is a quick side-by-side check for the export report; `edgecnn bench` is the careful one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError


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
