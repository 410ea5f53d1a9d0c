"""Lazy, quiet TensorFlow import. Only training/export commands call this; the runtime side never does."""

from __future__ import annotations

import os
from typing import Any

from edgecnn.errors import EdgecnnError


def import_tensorflow() -> Any:
    """Import TensorFlow with its start-up chatter silenced, or explain how to get it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
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
