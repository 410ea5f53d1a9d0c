"""Running prepared images through an ONNX Runtime session and reading what comes out.

The one home of batched inference (export's variant checks, eval, predict, optimize's parity) and of
comparing two sets of outputs. numpy + onnxruntime only."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import OUTPUT_NAME

PROB_TOLERANCE = 1e-3
PROB_SUM_TOLERANCE = 0.1


@dataclass(frozen=True)
class BatchedRun:
    scores: np.ndarray  # float32, one row per input
    inference_s: float  # seconds spent inside session.run, nothing else


def score_output_name(session: Any) -> str:
    """The class-score output: edgecnn's named one, else the graph's first output."""
    outputs = [o.name for o in session.get_outputs()]
    return OUTPUT_NAME if OUTPUT_NAME in outputs else outputs[0]


def run_batches(
    session: Any, x: np.ndarray, batch_size: int = 256, on_batch: Callable[[int], None] | None = None
) -> BatchedRun:
    """Run `x` (already prepared for the graph) through `session` in batches of `batch_size` (the last
    one partial); the scores and the time spent in the session."""
    input_name = session.get_inputs()[0].name
    out_name = score_output_name(session)
    chunks, seconds = [], 0.0
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        t0 = time.perf_counter()
        (scores,) = session.run([out_name], {input_name: batch})
        seconds += time.perf_counter() - t0
        chunks.append(np.asarray(scores, dtype=np.float32))
        if on_batch is not None:
            on_batch(len(batch))
    if not chunks:
        raise EdgecnnError("no images to evaluate")
    scores = np.concatenate(chunks)
    require_finite(scores)
    return BatchedRun(scores=scores, inference_s=seconds)


def require_finite(scores: np.ndarray) -> None:
    """Refuse NaN/inf outputs: an arg-max over NaN is class 0 and every accuracy or parity built on it
    would be a meaningless number, so predict, eval, optimize and export all stop here instead."""
    bad_rows = ~np.all(np.isfinite(scores.reshape(len(scores), -1)), axis=1)
    if np.any(bad_rows):
        raise EdgecnnError(
            f"the model's outputs contain NaN or infinite values for {int(bad_rows.sum())} of {len(scores)} "
            "images: the model (or its export) is broken, so no result is reported"
        )


def predict_probabilities(
    session: Any, x: np.ndarray, batch_size: int = 256, on_batch: Callable[[int], None] | None = None
) -> np.ndarray:
    """Run `x` (already prepared for the graph) through `session` in batches; float32 probabilities."""
    return run_batches(session, x, batch_size, on_batch).scores


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


def as_probabilities(scores: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rows of probabilities; softmax is applied (and reported) only when the model outputs logits."""
    scores = np.asarray(scores, dtype=np.float64)
    looks_like_probs = (
        scores.size > 0
        and float(scores.min()) >= -PROB_TOLERANCE
        and float(scores.max()) <= 1.0 + PROB_TOLERANCE
        and bool(np.all(np.abs(scores.sum(axis=1) - 1.0) <= PROB_SUM_TOLERANCE))
    )
    if looks_like_probs:
        return scores, False
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True), True
