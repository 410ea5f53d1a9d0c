"""The confusion-matrix picture `eval` saves beside its JSON (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgecnn.evaluation.evaluate import EvalResult


def plot_confusion(result: EvalResult, path: Path) -> Path:
    """Row-normalized colours (so rare classes show up), raw counts written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(result.confusion)
    labels = [c.label for c in result.per_class]
    k = len(labels)
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=np.float64), where=rows > 0)

    size = max(5.0, 0.55 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    try:
        im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
        ax.set_xticks(range(k), labels, rotation=45 if max(map(len, labels)) > 2 else 0, ha="right")
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        name = result.model.get("model_name") or Path(result.model["path"]).name
        ax.set_title(
            f"{name} ({result.model.get('variant')}) on {result.dataset['name']} test\n"
            f"accuracy {result.accuracy:.4f} over {result.num_images} images, {result.provider}",
            fontsize=10,
        )
        if k <= 20:
            font = 8 if k <= 10 else 6
            for i in range(k):
                for j in range(k):
                    if counts[i, j]:
                        colour = "white" if rates[i, j] > 0.5 else "black"
                        ax.text(
                            j, i, str(counts[i, j]), ha="center", va="center", fontsize=font, color=colour
                        )
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
