"""edgecnn: train small CNNs in Keras, export them to quantized ONNX, and measure them on the target.

From Python: `edgecnn.export`, `edgecnn.train`, `edgecnn.bench`, `edgecnn.evaluate`, `edgecnn.predict`
(see `edgecnn.api`). They load on first use, so `import edgecnn` stays cheap and TensorFlow-free."""

from __future__ import annotations

from typing import Any

from edgecnn.core.version import __version__

PUBLIC_API = ("export", "train", "bench", "evaluate", "predict")
__all__ = ["__version__", *PUBLIC_API]


def __getattr__(name: str) -> Any:
    if name in PUBLIC_API:
        from edgecnn import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")
