"""The Keras callbacks `train` adds to fit: per-epoch checkpoints (for --resume) and progress events.

Keras is passed in (these classes subclass `keras.callbacks.Callback`, so they are defined on call) to
keep the package TensorFlow-free at import. Progress goes out as `edgecnn.core.progress` events; how
they are drawn is the caller's business (`edgecnn train` draws rich bars on stderr)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgecnn.core.progress import Progress, Tracker
from edgecnn.training.resolved import ResolvedConfig
from edgecnn.training.run_dir import RunState, write_checkpoint

# Batch metrics are read at most this often: reading them every batch would sync the device each step.
METRICS_EVERY_S = 0.25
BATCH_METRICS = ("loss", "accuracy")


def checkpoint_epoch(
    model: Any,
    run_dir: Path,
    resolved: ResolvedConfig,
    state: RunState,
    epoch: int,
    metrics: Mapping[str, Any],
    seconds: float,
) -> None:
    """After `epoch` (1-based) finished: add its time and metrics to `state`, then persist model +
    optimizer and the history so far, atomically. Used by one-process fit (the callback below) and by
    the chief of a multi-worker run alike."""
    state.epoch_seconds.append(seconds)
    for key, value in metrics.items():
        state.history.setdefault(key, []).append(float(value))
    write_checkpoint(model, run_dir, resolved, state, epoch)


def epoch_checkpoint(keras: Any, run_dir: Path, resolved: ResolvedConfig, state: RunState) -> Any:
    class EpochCheckpoint(keras.callbacks.Callback):
        """Time each epoch, then checkpoint it (`checkpoint_epoch`)."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self._t0
            checkpoint_epoch(self.model, run_dir, resolved, state, epoch + 1, logs or {}, seconds)

    return EpochCheckpoint()


def _metrics(logs: Mapping[str, Any] | None, keep: Any) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items() if keep(k)}


def progress_reporter(keras: Any, progress: Progress, epochs: int) -> Any:
    class ProgressReporter(keras.callbacks.Callback):
        """One progress task per epoch ("epoch 2/5"): batches done of the epoch's steps, plus metrics."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            name = f"epoch {epoch + 1}/{epochs}"
            self._tracker = Tracker(progress, name, self.params.get("steps"), name)
            self._tracker.update(0)  # the bar appears before the first batch ends
            self._last = 0.0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            now = time.perf_counter()
            if now - self._last < METRICS_EVERY_S:
                self._tracker.update(batch + 1)
                return
            self._last = now
            self._tracker.update(batch + 1, _metrics(logs, lambda k: k in BATCH_METRICS))

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            steps = self.params.get("steps") or self._tracker.completed
            self._tracker.update(steps, _metrics(logs, lambda k: k != "learning_rate"))
            self._tracker.finish()

    return ProgressReporter()
