"""Ctrl-C and SIGTERM: one line, exit 130, and never the output of an interrupted run.

Both signals raise KeyboardInterrupt in the main thread, so `finally` blocks remove temporary files
and the command prints its one line. Python runs a handler only between bytecodes: a thread waiting
in a native call (ONNX Runtime building a session, TensorFlow converting a graph, a worker waiting
for its peers) would delay that for as long as the call lasts. A grace timer therefore ends the
process GRACE_S after the signal if it is still running: it removes the temporary outputs this
process registered, prints the line (once) and exits 130. Outputs are moved into place only while
no interrupt has arrived (`edgecnn.core.outputs` asks `interrupted()` first)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

INTERRUPT_EXIT = 130
GRACE_S = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_interrupted = threading.Event()
_reported = threading.Event()
_temporaries: set[Path] = set()
_lock = threading.Lock()


def interrupted() -> bool:
    """True once Ctrl-C or SIGTERM arrived: no output may be moved into place after that."""
    return _interrupted.is_set()


def mark_reported() -> None:
    """The command printed its one line: the grace timer must not print another."""
    _reported.set()


def register_temporary(path: Path) -> None:
    with _lock:
        _temporaries.add(path)


def forget_temporary(path: Path) -> None:
    with _lock:
        _temporaries.discard(path)


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _force_exit(signum: int) -> None:
    """The grace timer: still running GRACE_S after the signal (stuck in a native call, or in exit
    hooks that wait): remove our temporaries, print the line unless printed, exit 130."""
    time.sleep(GRACE_S)
    from edgecnn.core.scratch import remove_entry

    with _lock:
        leftovers = list(_temporaries)
    for entry in leftovers:
        remove_entry(entry)
    if not _reported.is_set():
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"error: interrupted ({signal_name(signum)}); no partial output was written\n")
            sys.stderr.flush()
    os._exit(INTERRUPT_EXIT)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if not _interrupted.is_set():
        _interrupted.set()
        threading.Thread(target=_force_exit, args=(signum,), name="edgecnn-interrupt", daemon=True).start()
    raise KeyboardInterrupt


def install_handlers() -> None:
    """Make SIGINT and SIGTERM interrupt the command (call once, from the CLI's main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_signal)
