"""Ending a worker whose cluster stalls, or that got Ctrl-C/SIGTERM while TensorFlow waited in C++.

Python runs signal handlers only between bytecodes, and TensorFlow's collective ops and cluster set-up
wait inside C++ for as long as a peer stays silent: a stuck worker would ignore Ctrl-C and SIGTERM (the
issue saw only SIGKILL end one). The watchdog thread therefore hears signals through the wakeup fd
(written by the C-level handler even while the main thread is blocked) and, when the main thread has not
ended within a grace period, writes one line, runs the registered clean-ups and leaves with os._exit.
It also ends the worker when a watched phase ("forming the cluster", "epoch 2/5") makes no progress for
`stall_timeout_s`, naming the peers that no longer answer. TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TextIO

from edgecnn.core.interrupt import INTERRUPT_EXIT
from edgecnn.training.cluster import ClusterSpec
from edgecnn.training.rendezvous import missing_workers

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class Watchdog:
    """Use as a context manager around everything a worker does once it has met its peers."""

    def __init__(
        self,
        cluster: ClusterSpec,
        *,
        stall_timeout_s: float = 120.0,
        grace_s: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.cluster, self.stall_timeout_s, self.grace_s = cluster, stall_timeout_s, grace_s
        self._stream = stream
        self._cleanups: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._phase: str | None = None
        self._last_beat = time.monotonic()
        self.signal_received: int | None = None
        self._signal_deadline: float | None = None
        self._stop = threading.Event()
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._old_handlers: dict[int, object] = {}
        self._old_wakeup_fd = -1
        self._thread = threading.Thread(target=self._run, name="edgecnn-watchdog", daemon=True)

    # ------------------------------------------------------------------ public

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        """Run `fn` before a forced exit (os._exit skips `finally` blocks and atexit)."""
        self._cleanups.append(fn)

    @contextlib.contextmanager
    def watch(self, phase: str) -> Iterator[None]:
        """End the worker when `phase` goes `stall_timeout_s` without a `beat()`."""
        with self._lock:
            self._phase, self._last_beat = phase, time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._phase = None

    def beat(self) -> None:
        with self._lock:
            self._last_beat = time.monotonic()

    def reclaim_signals(self) -> None:
        """Put this watchdog's handlers back. TensorFlow's cluster set-up installs its own C-level SIGTERM
        handler (its preemption notifier), which swallows SIGTERM while Python still reports ours."""
        for signum in self._old_handlers:
            signal.signal(signum, self._on_signal)

    def __enter__(self) -> Watchdog:
        if threading.current_thread() is threading.main_thread():
            self._reader, self._writer = socket.socketpair()
            self._reader.setblocking(False)
            self._writer.setblocking(False)
            for signum in STOP_SIGNALS:
                self._old_handlers[signum] = signal.signal(signum, self._on_signal)
            self._old_wakeup_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
        if self._signal_deadline is None:
            # After a stop signal the thread stays: TensorFlow's exit hooks may still wait for peers.
            self._stop.set()
            self._thread.join(timeout=2.0)
            for sock in (self._reader, self._writer):
                if sock is not None:
                    sock.close()

    # ------------------------------------------------------------------ thread

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread when it is back in Python: stop as Ctrl-C does. Noted here too (the
        # thread may not have read the wakeup fd yet): TensorFlow can turn this KeyboardInterrupt into a
        # RuntimeError, and the training loop then still knows the user asked to stop.
        if self.signal_received is None:
            self.signal_received = signum
        raise KeyboardInterrupt

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._reader is not None:
                ready, _, _ = select.select([self._reader], [], [], 0.5)
                if ready:
                    self._heard(self._reader.recv(64))
            else:
                time.sleep(0.5)
            now = time.monotonic()
            if self._signal_deadline is not None and now > self._signal_deadline:
                name = _signal_name(self.signal_received or signal.SIGTERM)
                self._exit(
                    f"stopped by {name}; this worker was waiting on the other workers and ended "
                    "without finishing (the last finished epoch's checkpoint stays for --resume)",
                    INTERRUPT_EXIT,  # as Ctrl-C and SIGTERM end every command (README: exit 130)
                )
            with self._lock:
                phase, stalled = self._phase, now - self._last_beat
            if phase is not None and stalled > self.stall_timeout_s:
                self._exit(self._stall_message(phase, stalled), 1)

    def _heard(self, data: bytes) -> None:
        for signum in data:
            if signum in STOP_SIGNALS and self._signal_deadline is None:
                self.signal_received = signum
                self._signal_deadline = time.monotonic() + self.grace_s

    def _stall_message(self, phase: str, stalled: float) -> str:
        missing = missing_workers(self.cluster)
        who = (
            f"no answer from {self.cluster.describe(missing)}"
            if missing
            else "every worker's port answers, so a worker is stuck (check its terminal)"
        )
        return f"no progress for {stalled:.0f} s while {phase}; {who}; ending this worker"

    def _exit(self, message: str, code: int) -> None:
        for fn in self._cleanups:
            with contextlib.suppress(Exception):
                fn()
        stream = self._stream or sys.stderr
        with contextlib.suppress(Exception):
            stream.write(f"error: {message}\n")
            stream.flush()
        os._exit(code)
