"""The one place that imports onnxruntime: quiet by default, GPU libraries preloaded on demand."""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any


@functools.lru_cache(maxsize=1)
def import_ort() -> Any:
    """onnxruntime, with its C++ logger silenced: provider load failures are checked and reported by
    edgecnn in one line, not as log spam."""
    import onnxruntime as ort

    try:
        ort.set_default_logger_severity(4)
    except Exception:  # noqa: BLE001
        pass
    return ort


@functools.lru_cache(maxsize=1)
def preload_gpu_libraries() -> None:
    """Let the GPU wheel load CUDA/cuDNN from pip-installed nvidia-* packages, where it offers that."""
    ort = import_ort()
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    # preload_dlls prints missing libraries on stdout, which would corrupt --json output.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            preload()
        except Exception:  # noqa: BLE001 - missing CUDA libraries are reported when a session starts
            pass


def available_providers() -> list[str]:
    return list(import_ort().get_available_providers())
