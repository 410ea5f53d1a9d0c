"""How a dataset's pixels are normalized: fixed for the MNIST family, measured for colour datasets."""

from __future__ import annotations

import numpy as np

from edgecnn.core.metadata import Normalization

# Pixels scaled to [0, 1], no mean/std shift: what the classic MNIST recipes train on, and what image
# folders get (their statistics are unknown until a model is trained on them).
UNIT_SCALE_NORMALIZATION = Normalization(scale=1.0 / 255.0, mean=(0.0,), std=(1.0,))
MNIST_NORMALIZATION = UNIT_SCALE_NORMALIZATION


def channel_stats(x: np.ndarray) -> Normalization:
    """Per-channel mean/std of the training images on the [0, 1] scale (measured, not assumed)."""
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    # Sum in chunks with float64 accumulators: exact enough and no 600 MB float copy of CIFAR-10.
    total = np.zeros(c)
    total_sq = np.zeros(c)
    for start in range(0, flat.shape[0], 1 << 20):
        chunk = flat[start : start + (1 << 20)].astype(np.float64)
        total += chunk.sum(axis=0)
        total_sq += (chunk * chunk).sum(axis=0)
    n = flat.shape[0]
    mean = total / n / 255.0
    std = np.sqrt(np.maximum(total_sq / n / 255.0**2 - mean**2, 1e-12))
    return Normalization(
        scale=1.0 / 255.0,
        mean=tuple(round(float(m), 4) for m in mean),
        std=tuple(round(float(s), 4) for s in std),
    )
