"""Scoring the trained model on the held-out test set, as train.json reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TestScore:
    probabilities: np.ndarray  # (N, classes), float64
    predictions: np.ndarray  # (N,) argmax labels
    accuracy: float
    loss: float


def score_probabilities(probabilities: np.ndarray, y_test: np.ndarray) -> TestScore:
    """Accuracy and loss of class probabilities computed by any means (model.predict, predict_local)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    y_pred = probs.argmax(axis=1)
    accuracy = float((y_pred == y_test).mean())
    # Same definition as Keras' sparse categorical cross-entropy (probabilities clipped at 1e-7).
    loss = float(-np.log(np.clip(probs[np.arange(len(y_test)), y_test], 1e-7, 1.0)).mean())
    return TestScore(probs, y_pred, accuracy, loss)


def score_test_set(model: Any, x_test: np.ndarray, y_test: np.ndarray) -> TestScore:
    return score_probabilities(model.predict(x_test, batch_size=1000, verbose=0), y_test)
