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
from edgecnn.core.metadata import LOGITS_NAME, OUTPUT_NAME, PREFIX
from edgecnn.runtime.feeds import fixed_batch

PROB_TOLERANCE = 1e-3
PROB_SUM_TOLERANCE = 0.1


@dataclass(frozen=True)
class BatchedRun:
    scores: np.ndarray  # float32, one row per input
    inference_s: float  # seconds spent inside session.run, nothing else


def score_output_name(session: Any) -> str:
    """The class-score output: edgecnn's named one (probabilities or logits), else the graph's first."""
    outputs = [o.name for o in session.get_outputs()]
    named = [name for name in (OUTPUT_NAME, LOGITS_NAME) if name in outputs]
    return named[0] if named else outputs[0]


def session_output_kind(session: Any) -> str | None:
    """What the session's model says its output is ("probabilities" | "logits"); None when it does not
    say (not an edgecnn export, or one from before the output kind was recorded)."""
    try:
        props = session.get_modelmeta().custom_metadata_map
    except AttributeError:
        return None
    return props.get(PREFIX + "output")


def run_batches(
    session: Any, x: np.ndarray, batch_size: int = 256, on_batch: Callable[[int], None] | None = None
) -> BatchedRun:
    """Run `x` (already prepared for the graph) through `session` in batches of `batch_size` (the last
    one partial); the scores and the time spent in the session."""
    score = _scorer(session)
    # A graph with a fixed batch dimension runs in batches of exactly that size (the last one padded).
    fixed = _fixed_batch_of(session)
    if fixed is not None:
        batch_size = fixed
    chunks, seconds = [], 0.0
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        n = len(batch)
        if fixed is not None and n < fixed:  # the last batch, padded with copies of its last image
            batch = np.concatenate([batch, np.repeat(batch[-1:], fixed - n, axis=0)])
        t0 = time.perf_counter()
        scores = score(batch)
        seconds += time.perf_counter() - t0
        chunks.append(np.asarray(scores, dtype=np.float32)[:n])
        if on_batch is not None:
            on_batch(len(batch))
    if not chunks:
        raise EdgecnnError("no images to evaluate")
    scores = np.concatenate(chunks)
    require_finite(scores)
    return BatchedRun(scores=scores, inference_s=seconds)


def _fixed_batch_of(session: Any) -> int | None:
    """The batch size the model's input is fixed to (an opened model of any runtime, or an onnxruntime
    session); None for a dynamic batch."""
    if hasattr(session, "input_shape"):
        first = session.input_shape[0] if session.input_shape else None
        return first if isinstance(first, int) and first > 0 else None
    return fixed_batch(session.get_inputs()[0]) if hasattr(session, "get_inputs") else None


def _scorer(session: Any) -> Callable[[np.ndarray], Any]:
    """batch -> class scores: an opened model of any runtime (runtime.backends) runs itself; an
    onnxruntime session is asked for its class-score output."""
    if hasattr(session, "runtime_version"):
        return session.run
    input_name, out_name = session.get_inputs()[0].name, score_output_name(session)
    return lambda batch: session.run([out_name], {input_name: batch})[0]


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
    """Run `x` (already prepared for the graph) through `session` in batches; float32 probabilities,
    with softmax applied when the model's metadata says it outputs logits (`as_probabilities`)."""
    scores = run_batches(session, x, batch_size, on_batch).scores
    probs, _ = as_probabilities(scores, session_output_kind(session))
    return probs.astype(np.float32)


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


def as_probabilities(scores: np.ndarray, output_kind: str | None = None) -> tuple[np.ndarray, bool]:
    """Rows of probabilities and whether softmax made them: the one place every runtime command turns
    model outputs into probabilities. `output_kind` is the model's metadata `output`: "logits" gets
    softmax, "probabilities" is taken as is; None (a model that does not say) is judged from the values."""
    scores = np.asarray(scores, dtype=np.float64)
    if output_kind == OUTPUT_NAME:
        require_distribution(scores)
        return scores, False
    if output_kind == LOGITS_NAME:
        return softmax(scores), True
    looks_like_probs = (
        scores.size > 0
        and float(scores.min()) >= -PROB_TOLERANCE
        and float(scores.max()) <= 1.0 + PROB_TOLERANCE
        and bool(np.all(np.abs(scores.sum(axis=1) - 1.0) <= PROB_SUM_TOLERANCE))
    )
    if looks_like_probs:
        return scores, False
    return softmax(scores), True


def require_distribution(scores: np.ndarray) -> None:
    """Refuse outputs that claim to be probabilities (the model's metadata says so) but are not a
    distribution: negative values or rows that do not sum to 1 mean the graph is not the model its
    metadata describes, and an arg-max over them would be a probably-wrong answer."""
    rows = scores.reshape(len(scores), -1)
    negative = np.any(rows < -PROB_TOLERANCE, axis=1) | np.any(rows > 1.0 + PROB_TOLERANCE, axis=1)
    off_sum = np.abs(rows.sum(axis=1) - 1.0) > PROB_SUM_TOLERANCE
    bad = negative | off_sum
    if np.any(bad):
        first = int(np.argmax(bad))
        raise EdgecnnError(
            f"the model's metadata says its outputs are probabilities, but {int(bad.sum())} of {len(rows)} "
            f"rows are not a distribution (row {first}: min {rows[first].min():.3g}, sum "
            f"{rows[first].sum():.3g}); the graph does not match its metadata, so no result is reported"
        )


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
