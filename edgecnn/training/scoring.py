"""Scoring the trained model on the held-out test set, as train.json reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError


@dataclass(frozen=True)
class TestScore:
    probabilities: np.ndarray  # (N, classes), float64
    predictions: np.ndarray  # (N,) argmax labels
    accuracy: float
    loss: float


def score_test_set(model: Any, x_test: Any, y_test: np.ndarray) -> TestScore:
    """`x_test`: normalized images (an array) or a batched tf.data stream of them, in `y_test`'s order."""
    if isinstance(x_test, np.ndarray):
        raw = model.predict(x_test, batch_size=1000, verbose=0)
    else:
        raw = model.predict(x_test, verbose=0)
    probs = np.asarray(raw, dtype=np.float64)
    if probs.shape[0] != y_test.shape[0]:
        raise EdgecnnError(f"scored {probs.shape[0]} test images but there are {y_test.shape[0]} labels")
    y_pred = probs.argmax(axis=1)
    accuracy = float((y_pred == y_test).mean())
    # Same definition as Keras' sparse categorical cross-entropy (probabilities clipped at 1e-7).
    loss = float(-np.log(np.clip(probs[np.arange(len(y_test)), y_test], 1e-7, 1.0)).mean())
    return TestScore(probs, y_pred, accuracy, loss)
