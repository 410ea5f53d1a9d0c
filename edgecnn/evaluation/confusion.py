"""The confusion matrix of a classifier: its counts, and its picture (eval saves it beside eval.json;
train can save the same one for its test set). matplotlib's object API on an Agg canvas: no display,
no global backend switched."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecnn.core.outputs import atomic_path


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[true class, predicted class] counts, int64."""
    k = num_classes
    flat = np.asarray(y_true, dtype=np.int64) * k + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def plot_confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], path: Path, *, title: str | None = None
) -> Path:
    """Row-normalized colours (so rare classes show up), raw counts written in each cell (up to 20
    classes). `title` defaults to the accuracy over the images given."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [str(label) for label in labels]
    k = len(labels)
    counts = confusion_counts(y_true, y_pred, k)
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=np.float64), where=rows > 0)
    if title is None:
        total = int(counts.sum())
        accuracy = float(np.trace(counts) / total) if total else 0.0
        title = f"confusion matrix (accuracy {accuracy:.4f} over {total} images)"

    size = max(5.0, 0.55 * k + 2.5)
    fig = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(k), labels, rotation=45 if max(map(len, labels), default=1) > 2 else 0, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    if k <= 20:
        font = 8 if k <= 10 else 6
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    colour = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=font, color=colour)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return Path(path)
