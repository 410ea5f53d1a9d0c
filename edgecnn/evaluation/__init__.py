"""edgecnn.evaluation: `edgecnn eval`, the accuracy of an ONNX model on a real test set (per class,
with its confusion matrix), and the one confusion-matrix picture (confusion.py).
Runtime side: numpy, onnxruntime and matplotlib, never TensorFlow."""

from edgecnn.evaluation.confusion import confusion_counts, plot_confusion_matrix
from edgecnn.evaluation.evaluate import (
    CONFUSION_PNG,
    RESULT_JSON,
    ClassStats,
    EvalConfig,
    EvalResult,
    Scored,
    evaluate,
    score_test_set,
)

__all__ = [
    "CONFUSION_PNG",
    "RESULT_JSON",
    "ClassStats",
    "EvalConfig",
    "EvalResult",
    "Scored",
    "confusion_counts",
    "evaluate",
    "plot_confusion_matrix",
    "score_test_set",
]
