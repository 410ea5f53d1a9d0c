"""ONNX Runtime's description of a tensor (symbolic shape, "tensor(float)" type) made concrete."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError

_ORT_TYPE_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def resolve_shape(shape: Any, batch: int, batch_symbols: set[str] | None = None) -> tuple[int, ...] | None:
    """A concrete shape for an ORT NodeArg shape: symbolic/unknown leading dim or known batch symbols
    become `batch`; None when another dim stays unknown (then only a real run can tell)."""
    dims: list[int] = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif i == 0 or (isinstance(d, str) and batch_symbols and d in batch_symbols):
            dims.append(batch)
        else:
            return None
    return tuple(dims)


def numpy_dtype(ort_type: str) -> Any:
    try:
        return _ORT_TYPE_TO_NUMPY[ort_type]
    except KeyError:
        raise EdgecnnError(f"unsupported tensor type {ort_type}") from None
