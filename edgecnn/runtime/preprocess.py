"""Turn uint8 images into exactly what an exported graph expects, from its metadata alone (numpy only)."""

from __future__ import annotations

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata


def prepare_batch(images: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """uint8 (N, H, W, C) images -> float32 batch in the graph's layout, normalized as at training."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise EdgecnnError(f"expected images shaped (N, H, W, C), got {images.shape}")
    if tuple(images.shape[1:]) != tuple(meta.input_shape):
        raise EdgecnnError(
            f"images are {images.shape[1]}x{images.shape[2]}x{images.shape[3]} but the model expects "
            f"{meta.input_shape[0]}x{meta.input_shape[1]}x{meta.input_shape[2]} (HxWxC)"
        )
    x = meta.normalization.apply(images)
    if meta.layout == "NCHW":
        x = np.transpose(x, (0, 3, 1, 2))
    return np.ascontiguousarray(x, dtype=np.float32)
