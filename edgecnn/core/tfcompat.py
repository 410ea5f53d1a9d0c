"""Lazy, quiet TensorFlow import. Only training/export commands call this; the runtime side never does."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from edgecnn.core.errors import EdgecnnError


@contextlib.contextmanager
def _silence_native_stderr() -> Iterator[None]:
    """TF 2.21 writes absl/oneDNN/cudart banners from C++ straight to fd 2, ignoring TF_CPP_MIN_LOG_LEVEL."""
    if os.environ.get("EDGECNN_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> Any:
    """Import TensorFlow with its start-up chatter silenced, or explain how to get it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        with _silence_native_stderr():
            import keras  # noqa: F401 - imported here so its banner is silenced too
            import tensorflow as tf
    except ImportError:
        raise EdgecnnError(
            "this command needs TensorFlow, which is not installed here; "
            "install the training extra: pip install 'edgecnn[train]'"
        ) from None
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    tf.get_logger().setLevel("ERROR")
    return tf


def import_keras() -> Any:
    import_tensorflow()
    import keras

    return keras
