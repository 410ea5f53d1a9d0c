"""How much work `edgecnn tune` is before it starts, and what a smaller accuracy check still proves.

On a slow board the accuracy check dominates: every candidate on every image export evaluated (10,000
for MNIST, ~5 files: minutes to tens of minutes). `--images N` checks a seeded random sample of those
images instead; the file's accuracy on all of them is then known only within an interval, so the check
reports a 95% interval on the difference from export's number (Wilson score interval, with the finite
population correction because the sample is drawn without replacement from export's images) and rejects
a file only when the whole interval lies beyond the tolerance. With every image (the default) the
interval is the measured difference itself and the check is the exact one. `--rounds N` bounds the
timing: N rounds of every candidate, then 2N rounds of the close finalists per batch and thread count
(benchmarking.tune_finalists), counted in the estimate as if every cell had the most finalists. The
estimate comes from one short timing of the FP32 file on this device.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
SAMPLE_SEED = 0  # the sample is the same on every run and every device: results stay comparable
PROBE_IMAGES = 64  # the first short timing: one warm batch of this many images
WARMUP_CALLS = 3  # bench's warm-up calls per model and batch in tune's timing (both passes)
# The second pass (benchmarking.tune_finalists): per (batch, threads) cell, the candidates within
# FINALIST_MARGIN of the best, at most MAX_FINALISTS, re-timed in FINALIST_ROUND_FACTOR x --rounds rounds.
FINALIST_MARGIN = 0.15
MAX_FINALISTS = 4
FINALIST_ROUND_FACTOR = 2


def sample_indices(total: int, n: int | None) -> np.ndarray:
    """Which of export's `total` images the check uses: all of them, or a seeded random `n`, in order."""
    if n is None or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(total, size=n, replace=False))


def accuracy_interval(correct: int, n: int, population: int) -> tuple[float, float]:
    """95% interval for the accuracy on all `population` images, from `correct` of a random `n` of
    them: Wilson's score interval with n_eff = n (N - 1) / (N - n). Exact (a point) when n == N."""
    p = correct / n
    if n >= population:
        return p, p
    n_eff = n * (population - 1) / (population - n)
    z2 = Z * Z
    centre = (p + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = Z * math.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff * n_eff)) / (1 + z2 / n_eff)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval_pp(
    correct: int, n: int, population: int, export_accuracy: float
) -> tuple[float, float]:
    """The 95% interval (pp) of (accuracy here on all export's images) - (export's accuracy)."""
    lo, hi = accuracy_interval(correct, n, population)
    return (lo - export_accuracy) * 100, (hi - export_accuracy) * 100


@dataclass(frozen=True)
class TuneEstimate:
    """The work ahead, from one measured FP32 batch: accuracy images x candidates, then per thread count
    and batch size `rounds` interleaved rounds of every candidate (at least one call each), then at
    most MAX_FINALISTS finalists in `finalist_rounds` rounds."""

    images: int
    export_images: int
    candidates: int
    thread_counts: int
    batch_sizes: tuple[int, ...]
    rounds: int
    round_seconds: float
    fp32_ms_per_image: float  # measured here, batch PROBE_IMAGES, warm
    open_s: float = 0.0  # measured: opening the FP32 session here (each timing child opens every file)
    # measured: a Python process importing bench and onnxruntime, plus loading the test images (each
    # timing child does both, one child per thread count)
    child_start_s: float = 0.0

    @property
    def accuracy_s(self) -> float:
        return self.images * self.candidates * self.fp32_ms_per_image / 1e3

    @property
    def timing_s(self) -> float:
        per_thread = self.child_start_s + self.candidates * self.open_s
        for b in self.batch_sizes:
            call_s = b * self.fp32_ms_per_image / 1e3
            per_thread += self.candidates * (
                self.rounds * max(self.round_seconds, call_s) + WARMUP_CALLS * call_s
            )
        return self.thread_counts * per_thread

    @property
    def finalist_rounds(self) -> int:
        return FINALIST_ROUND_FACTOR * self.rounds

    @property
    def max_finalists(self) -> int:
        return min(MAX_FINALISTS, self.candidates)

    @property
    def finalists_s(self) -> float:
        """Every cell re-timing MAX_FINALISTS candidates in a child of its own (fewer run when fewer are
        close to the best; none when one is alone within the margin). Opening OpenVINO files costs more
        than the FP32 ORT open measured here: measured on bench-peers' bundles, 17-21 s against 18-22 s
        estimated."""
        finalists = self.max_finalists
        if finalists < 2:
            return 0.0
        total = 0.0
        for b in self.batch_sizes:
            call_s = b * self.fp32_ms_per_image / 1e3
            per_call = self.finalist_rounds * max(self.round_seconds, call_s) + WARMUP_CALLS * call_s
            total += self.child_start_s + finalists * (self.open_s + per_call)
        return self.thread_counts * total

    @property
    def total_s(self) -> float:
        return self.accuracy_s + self.timing_s + self.finalists_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "export_images": self.export_images,
            "candidates": self.candidates,
            "thread_counts": self.thread_counts,
            "batch_sizes": list(self.batch_sizes),
            "rounds": self.rounds,
            "fp32_ms_per_image": self.fp32_ms_per_image,
            "open_s": self.open_s,
            "child_start_s": self.child_start_s,
            "accuracy_s": self.accuracy_s,
            "timing_s": self.timing_s,
            "finalist_rounds": self.finalist_rounds,
            "max_finalists": self.max_finalists,
            "finalists_s": self.finalists_s,  # with MAX_FINALISTS in every cell (see finalists_s)
            "total_s": self.total_s,
        }


@dataclass(frozen=True)
class Probe:
    ms_per_image: float
    open_s: float
    child_start_s: float


def probe(fp32: Path, x: np.ndarray, data_load_s: float) -> Probe:
    """The first short timing: opening the FP32 file, one warm batch of up to PROBE_IMAGES images
    through it (ms per image), and one Python process importing bench and onnxruntime, which with
    `data_load_s` (this process loading the test images) is what each timing child pays first."""
    import subprocess
    import sys

    from edgecnn.core.metadata import read_metadata
    from edgecnn.runtime.inference import run_batches
    from edgecnn.runtime.preprocess import prepare_batch
    from edgecnn.runtime.sessions import open_cpu_session

    t0 = time.perf_counter()
    session, _ = open_cpu_session(fp32)
    open_s = time.perf_counter() - t0
    batch = prepare_batch(x[:PROBE_IMAGES], read_metadata(fp32))
    run_batches(session, batch, len(batch))  # warm-up: first-run allocations are not the steady cost
    t0 = time.perf_counter()
    run_batches(session, batch, len(batch))
    ms = (time.perf_counter() - t0) * 1e3 / len(batch)
    t0 = time.perf_counter()
    imports = "import onnxruntime, edgecnn.benchmarking.child, edgecnn.benchmarking.bench_run"
    subprocess.run([sys.executable, "-c", imports], capture_output=True, check=False)
    return Probe(ms, open_s, time.perf_counter() - t0 + data_load_s)
