"""Calibration data for static INT8: which training images, checked against the graph input, fed to
ONNX Runtime's calibrator in batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError


def check_calibration_images(images: np.ndarray, graph_shape: tuple[int, ...]) -> None:
    """Refuse calibration data whose per-image shape is not what the graph input takes."""
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(graph_shape):
        got = "x".join(str(d) for d in images.shape[1:]) if images.ndim == 4 else str(images.shape)
        raise EdgecnnError(
            f"calibration images are {got} but the model input is "
            f"{'x'.join(str(d) for d in graph_shape)}; use the dataset the model was trained on (--dataset)"
        )
    if images.dtype != np.float32:
        raise EdgecnnError(f"calibration images must be float32 (normalized), not {images.dtype}")


def make_data_reader(images: np.ndarray, input_name: str, batch_size: int) -> Any:
    """A CalibrationDataReader over prepared float32 images, rewindable for repeated use."""
    import onnxruntime.quantization as q

    class _Reader(q.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._pos = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self._pos >= len(images):
                return None
            batch = images[self._pos : self._pos + batch_size]
            self._pos += batch_size
            return {input_name: np.ascontiguousarray(batch)}

        def rewind(self) -> None:
            self._pos = 0

    return _Reader()


def select_calibration_images(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` training images drawn without replacement (seeded), so calibration is reproducible."""
    if count >= len(images):
        return images
    rng = np.random.default_rng(seed)
    return images[np.sort(rng.choice(len(images), size=count, replace=False))]
