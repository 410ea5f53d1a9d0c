"""Silencing libraries that print per-op chatter (tf2onnx, Keras export, ORT's quantizer).

`--json` output must stay one document on stdout and the CLI promises one-line errors, so their Python
logging, warnings and stray prints are muted while they run. TensorFlow's C++ banners are handled at
import time by `edgecnn.core.tfcompat`."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

# tf2onnx logs unsupported ops at ERROR; edgecnn collects and reports them in one line instead.
_MUTED_LOGGERS = ("tf2onnx", "absl")


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    muted = {name: logging.getLogger(name).level for name in _MUTED_LOGGERS}
    for name in _MUTED_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        for name, old in muted.items():
            logging.getLogger(name).setLevel(old)
