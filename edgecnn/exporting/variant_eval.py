"""Measuring an exported variant next to FP32: accuracy and output agreement on the real test set, and
a quick latency check run side by side through `edgecnn.benchmarking.timing` (the one timing harness).

numpy + onnxruntime only, so it can be reused on the runtime side. The latency here is a quick check for
the export report; `edgecnn bench` is the careful one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.benchmarking.timing import LatencyStats, interleaved_rounds, session_runner
from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.inference import Agreement, accuracy, compare_probabilities, predict_probabilities

LATENCY_WARMUP = 3  # untimed runs of every session before the first round


@dataclass(frozen=True)
class VariantScore:
    accuracy: float | None  # top-1 on the labelled test images; None: no labels
    agreement: Agreement  # with the FP32 probabilities


def score_variant(
    session: Any, x_graph: np.ndarray, y: np.ndarray | None, fp32_probs: np.ndarray
) -> VariantScore:
    """Run the test images through `session`; its accuracy (None without labels) and how closely it
    follows FP32."""
    probs = predict_probabilities(session, x_graph)
    acc = None if y is None else accuracy(probs, y)
    return VariantScore(acc, compare_probabilities(fp32_probs, probs))


def batch_of(x: np.ndarray, batch_size: int) -> np.ndarray:
    """The first `batch_size` images of `x`, repeating `x` when it has fewer."""
    if batch_size > len(x):
        reps = int(np.ceil(batch_size / len(x)))
        return np.ascontiguousarray(np.concatenate([x] * reps)[:batch_size])
    return np.ascontiguousarray(x[:batch_size])


def _runner(session: Any, batch: np.ndarray) -> Any:
    """One inference on `batch`: an ONNX Runtime session, or another format's model with `runner(x)`."""
    if hasattr(session, "runner"):
        return session.runner(batch)
    return session_runner(
        session, "CPUExecutionProvider", {session.get_inputs()[0].name: batch}, io_binding=False
    )


def side_by_side_latency(
    sessions: Mapping[str, Any], x: np.ndarray, batch_sizes: tuple[int, ...] = (1, 64), *, rounds: int = 30
) -> dict[str, dict[int, LatencyStats]]:
    """Latency statistics of every session at every batch size, measured in interleaved rounds.

    Interleaving (one run of each variant per round, order rotated each round) means a burst of load
    from other processes on a shared CPU hits all variants alike instead of whichever happened to be
    running, so the comparison with FP32 stays fair even when the absolute numbers are noisy.
    """
    if rounds < 1:
        raise EdgecnnError("latency rounds must be >= 1")
    results: dict[str, dict[int, LatencyStats]] = {name: {} for name in sessions}
    for batch_size in batch_sizes:
        batch = batch_of(x, batch_size)
        runners = {name: _runner(s, batch) for name, s in sessions.items()}
        per_call_ms = interleaved_rounds(runners, rounds, 1, warmup=LATENCY_WARMUP)
        for name, samples in per_call_ms.items():
            results[name][batch_size] = LatencyStats.from_ms(samples)
    return results
