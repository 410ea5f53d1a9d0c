"""Carving and counting samples: the train/validation split and per-class counts."""

from __future__ import annotations

import numpy as np

from edgecnn.core.errors import EdgecnnError


def train_val_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a shuffled validation set of `fraction` of the samples; same seed, same split."""
    if not 0.0 <= fraction < 1.0:
        raise EdgecnnError(f"validation fraction must be in [0, 1), not {fraction}")
    if x.shape[0] != y.shape[0]:
        raise EdgecnnError(f"{x.shape[0]} images but {y.shape[0]} labels")
    n = x.shape[0]
    n_val = int(round(n * fraction))
    if fraction > 0 and n_val == 0 and n > 1:
        n_val = 1
    if n_val >= n and n > 0:
        raise EdgecnnError(f"validation fraction {fraction} leaves no training samples out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    val_idx, tr_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return x[tr_idx], y[tr_idx], x[val_idx], y[val_idx]


def class_counts(y: np.ndarray, num_classes: int) -> list[int]:
    """How many samples of each class 0..num_classes-1 `y` holds."""
    return np.bincount(y, minlength=num_classes).astype(int).tolist()
