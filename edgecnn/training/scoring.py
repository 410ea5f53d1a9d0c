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


def score_probabilities(probabilities: np.ndarray, y_test: np.ndarray) -> TestScore:
    """Accuracy and loss of class probabilities computed by any means (model.predict, predict_local)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.shape[0] != y_test.shape[0]:
        raise EdgecnnError(f"scored {probs.shape[0]} test images but there are {y_test.shape[0]} labels")
    y_pred = probs.argmax(axis=1)
    accuracy = float((y_pred == y_test).mean())
    # Same definition as Keras' sparse categorical cross-entropy (probabilities clipped at 1e-7).
    loss = float(-np.log(np.clip(probs[np.arange(len(y_test)), y_test], 1e-7, 1.0)).mean())
    return TestScore(probs, y_pred, accuracy, loss)


def predict_probabilities(model: Any, x_test: Any) -> np.ndarray:
    """Class probabilities of `model` for normalized images: an array, or a batched tf.data stream."""
    if isinstance(x_test, np.ndarray):
        return np.asarray(model.predict(x_test, batch_size=1000, verbose=0))
    return np.asarray(model.predict(x_test, verbose=0))
