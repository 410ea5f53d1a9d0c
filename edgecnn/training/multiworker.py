"""Data-parallel training on N >= 2 workers (TensorFlow's MultiWorkerMirroredStrategy) that works on Keras 3.

Why not `model.fit`: under this strategy Keras 3's fit first "symbolically builds" the model from one
batch and, to get that batch, calls `strategy.reduce("MEAN", <PerReplica data batch>)`; with two or more
workers that reduction fails ("Attempt to convert a value (PerReplica: ...)"). Building the model,
optimizer and metrics inside the scope beforehand does not help (the reduction runs before Keras looks
at what is built; tried with two real worker processes). So this module runs its own training step
(`strategy.run` inside a `tf.function`, gradients all-reduced by the Keras optimizer itself) with the
same semantics as single-process `fit`:

- batches: `global batch = per-worker batch x workers`. Every worker draws the same seeded permutation
  per epoch, cuts it into ceil(n / global batch) near-equal steps, and feeds each of its replicas a
  different slice, so each image is used once per epoch (sharded input) and no replica gets an empty
  batch. The loss is the mean over the whole global batch, as one process with that batch would compute.
- history: per epoch "loss", "accuracy" (over the epoch's training images, as Keras reports them) and
  "val_loss", "val_accuracy" (raw weights, sharded over the workers) when there is a validation split.
- EMA: the optimizer's own moving average (use_ema), swapped in at the end, as fit does.
- checkpoints: `on_epoch_end` runs on the chief only (it writes the run directory); the other workers
  write nothing, so they have no scratch space to clean up.
- resume: the chief loads the checkpoint and its weights, optimizer state and epoch are broadcast to every
  worker, so a resumed cluster continues in lockstep even when only the chief has the run directory.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.progress import Progress, Tracker
from edgecnn.training.cluster import ClusterSpec
from edgecnn.training.watchdog import Watchdog


class WorkerInterrupted(EdgecnnError):
    """Ctrl-C or SIGTERM on this worker; the last finished epoch's checkpoint stays for --resume."""

    exit_code = 130


class ClusterBroken(EdgecnnError):
    """A peer left (killed, crashed, interrupted) while the cluster was working together."""


@dataclass(frozen=True)
class FitData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x_train) != len(self.y_train) or len(self.x_val) != len(self.y_val):
            raise EdgecnnError("images and labels differ in length")
        if len(self.x_train) < 1:
            raise EdgecnnError("no training images left; raise --limit or lower --val-split")


@dataclass(frozen=True)
class ResumePoint:
    """What the chief read from checkpoint-state.json (the other workers get it by broadcast)."""

    checkpoint: Path
    epoch: int
    history: Mapping[str, Sequence[float]] = field(default_factory=dict)
    epoch_seconds: Sequence[float] = ()


@dataclass(frozen=True)
class EpochEnd:
    """Handed to `on_epoch_end` (chief only) after each finished epoch; `epoch` counts from 1."""

    epoch: int
    model: Any
    history: Mapping[str, list[float]]
    epoch_seconds: list[float]


@dataclass(frozen=True)
class MultiWorkerFitConfig:
    cluster: ClusterSpec
    epochs: int
    per_worker_batch: int
    seed: int = 0
    stall_timeout_s: float = 120.0  # a step, evaluation or checkpoint that takes longer ends the worker

    def __post_init__(self) -> None:
        for name in ("epochs", "per_worker_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EdgecnnError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise EdgecnnError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.stall_timeout_s > 0:
            raise EdgecnnError(f"stall timeout must be > 0 seconds, got {self.stall_timeout_s!r}")

    @property
    def global_batch(self) -> int:
        return self.per_worker_batch * self.cluster.size


@dataclass(frozen=True)
class MultiWorkerFitResult:
    model: Any = field(repr=False)
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    epochs_completed: int
    initial_epoch: int
    replicas: int
    per_worker_batch: int
    global_batch: int


# --------------------------------------------------------------------------- batches (no TensorFlow)


def epoch_batches(n: int, global_batch: int, replicas: int, seed: int, epoch: int) -> list[list[np.ndarray]]:
    """The indices each replica trains on at each step of `epoch` (the same plan on every worker)."""
    steps = max(1, math.ceil(n / global_batch))
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [np.array_split(step, replicas) for step in np.array_split(order, steps)]


def eval_batches(n: int, global_batch: int, replicas: int) -> list[list[np.ndarray]]:
    steps = max(1, math.ceil(n / global_batch))
    return [np.array_split(step, replicas) for step in np.array_split(np.arange(n), steps)]


# --------------------------------------------------------------------------- TensorFlow side


def make_multiworker_strategy(cluster: ClusterSpec, watchdog: Watchdog) -> Any:
    """Form the cluster (after `rendezvous`); a peer that vanishes meanwhile ends this worker with a line."""
    import json

    from edgecnn.core.tfcompat import import_tensorflow

    os.environ["TF_CONFIG"] = json.dumps(cluster.raw)  # what TensorFlow's resolver reads
    tf = import_tensorflow()
    with watchdog.watch("forming the cluster"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    watchdog.reclaim_signals()
    return strategy


def _distribute(strategy: Any, x: np.ndarray, y: np.ndarray, parts: list[np.ndarray]) -> Any:
    def value_fn(ctx: Any) -> tuple[np.ndarray, np.ndarray]:
        part = parts[ctx.replica_id_in_sync_group]
        return x[part], y[part]

    return strategy.experimental_distribute_values_from_function(value_fn)


def _steps(tf: Any, keras: Any, strategy: Any, model: Any) -> tuple[Any, Any]:
    """The train and eval steps: per-replica sums, reduced (summed) over the whole cluster."""

    def sums(y: Any, probs: Any) -> tuple[Any, Any]:
        per_example = keras.losses.sparse_categorical_crossentropy(y, probs)
        hits = tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int64), tf.cast(y, tf.int64))
        return per_example, tf.reduce_sum(tf.cast(hits, tf.float32))

    def train_replica(x: Any, y: Any, count: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            per_example, correct = sums(y, probs)
            # Mean over the global batch: the optimizer all-reduces (sums) the replicas' gradients.
            loss = tf.reduce_sum(per_example) / count
            if model.losses:
                loss += tf.add_n(model.losses) / strategy.num_replicas_in_sync
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return tf.reduce_sum(per_example), correct

    def eval_replica(x: Any, y: Any) -> tuple[Any, Any]:
        per_example, correct = sums(y, model(x, training=False))
        return tf.reduce_sum(per_example), correct

    def reduced(per_replica: tuple[Any, Any]) -> tuple[Any, Any]:
        return tuple(strategy.reduce("SUM", v, axis=None) for v in per_replica)  # type: ignore[return-value]

    @tf.function(reduce_retracing=True)
    def train_step(batch: Any, count: Any) -> tuple[Any, Any]:
        return reduced(strategy.run(train_replica, args=(*batch, count)))

    @tf.function(reduce_retracing=True)
    def eval_step(batch: Any) -> tuple[Any, Any]:
        return reduced(strategy.run(eval_replica, args=batch))

    return train_step, eval_step


def broadcast_from_chief(
    strategy: Any, cluster: ClusterSpec, shapes: Sequence[tuple[int, ...]], values: Sequence[Any] | None
) -> list[np.ndarray]:
    """The chief's `values` (None on the other workers), on every worker: a sum all-reduce to which only
    the chief's first replica contributes. Sent as float64, which holds float32 weights and step counters
    exactly."""
    out: list[np.ndarray] = []
    for i, shape in enumerate(shapes):
        mine = np.zeros(shape, np.float64) if values is None else np.asarray(values[i], np.float64)
        zero = np.zeros(shape, np.float64)

        def value_fn(ctx: Any, mine: np.ndarray = mine, zero: np.ndarray = zero) -> np.ndarray:
            return mine if cluster.is_chief and ctx.replica_id_in_sync_group == 0 else zero

        total = strategy.reduce(
            "SUM", strategy.experimental_distribute_values_from_function(value_fn), axis=None
        )
        out.append(np.asarray(total))
    return out


def _assign(variables: Sequence[Any], values: Sequence[np.ndarray]) -> None:
    for var, value in zip(variables, values, strict=True):
        var.assign(value.astype(np.dtype(var.dtype)))  # Keras 3 variables name their dtype as a string


def restore_on_every_worker(
    strategy: Any, cluster: ClusterSpec, model: Any, resume: ResumePoint | None
) -> int:
    """Load the chief's checkpoint into every worker's model and optimizer; returns its epoch (0: none)."""
    from edgecnn.core.tfcompat import import_keras

    model_values = optimizer_values = None
    epoch = 0
    if cluster.is_chief and resume is not None:
        try:
            # Outside the strategy scope: plain variables on the chief only (creating variables in the
            # scope is a collective step every worker would have to take too).
            saved = import_keras().models.load_model(resume.checkpoint)
        except Exception as exc:  # noqa: BLE001 - a corrupt checkpoint is the user's problem to know about
            raise EdgecnnError(
                f"cannot load checkpoint {resume.checkpoint} ({type(exc).__name__}); start again with --force"
            ) from None
        model_values = [v.numpy() for v in saved.variables]
        optimizer_values = [v.numpy() for v in saved.optimizer.variables]
        epoch = resume.epoch
    (epoch_array,) = broadcast_from_chief(
        strategy, cluster, [(1,)], None if not cluster.is_chief else [[epoch]]
    )
    epoch = int(epoch_array[0])
    if epoch > 0:
        for variables, values in (
            (model.variables, model_values),
            (model.optimizer.variables, optimizer_values),
        ):
            shapes = [tuple(v.shape) for v in variables]
            _assign(variables, broadcast_from_chief(strategy, cluster, shapes, values))
    return epoch


def shared_history(
    strategy: Any, cluster: ClusterSpec, resume: ResumePoint | None, epoch: int, keys: Sequence[str]
) -> tuple[dict[str, list[float]], list[float]]:
    """The resumed run's per-epoch metrics and times (the chief's checkpoint state) on every worker, so
    every worker reports the whole run. NaN stands for a value the checkpoint state lacks."""
    if epoch == 0:
        return {}, []

    def padded(values: Sequence[float]) -> list[float]:
        return [float(v) for v in values][:epoch] + [math.nan] * max(0, epoch - len(values))

    rows = None
    if cluster.is_chief and resume is not None:
        rows = [[padded(resume.history.get(k, [])) for k in keys] + [padded(resume.epoch_seconds)]]
    (matrix,) = broadcast_from_chief(strategy, cluster, [(len(keys) + 1, epoch)], rows)
    history = {k: [float(v) for v in matrix[i]] for i, k in enumerate(keys)}
    return history, [float(v) for v in matrix[-1]]


def _peer_from_error(cluster: ClusterSpec, exc: Exception) -> str:
    found = re.search(r"/job:(worker|chief)/replica:\d+/task:(\d+)", str(exc))
    if found:
        kind, index = found.group(1), int(found.group(2))
        rank = index if kind == "chief" or "chief" not in cluster.raw["cluster"] else index + 1
        if 0 <= rank < cluster.size and rank != cluster.rank:
            return cluster.describe([rank])
    return "another worker"


def _epoch_metrics(loss_sum: float, correct: float, n: int, prefix: str = "") -> dict[str, float]:
    return {f"{prefix}loss": loss_sum / n, f"{prefix}accuracy": correct / n}


def _run_epoch(
    steps: tuple[Any, Any],
    strategy: Any,
    data: FitData,
    config: MultiWorkerFitConfig,
    epoch: int,
    tracker: Tracker,
    watchdog: Watchdog,
) -> dict[str, float]:
    """One epoch over this worker's shards, then the sharded validation; the cluster-wide metrics."""
    import tensorflow as tf  # already imported by make_multiworker_strategy

    train_step, eval_step = steps
    replicas = strategy.num_replicas_in_sync
    n = len(data.x_train)
    loss_sum = correct = 0.0
    for parts in epoch_batches(n, config.global_batch, replicas, config.seed, epoch):
        count = tf.constant(float(sum(len(p) for p in parts)))
        step_loss, step_correct = train_step(_distribute(strategy, data.x_train, data.y_train, parts), count)
        loss_sum, correct = loss_sum + float(step_loss), correct + float(step_correct)
        watchdog.beat()
        tracker.advance(metrics={"loss": loss_sum / n, "accuracy": correct / n})
    metrics = _epoch_metrics(loss_sum, correct, n)
    n_val = len(data.x_val)
    if n_val:
        tracker.describe("validating")
        val_loss = val_correct = 0.0
        for parts in eval_batches(n_val, config.global_batch, replicas):
            step_loss, step_correct = eval_step(_distribute(strategy, data.x_val, data.y_val, parts))
            val_loss, val_correct = val_loss + float(step_loss), val_correct + float(step_correct)
            watchdog.beat()
        metrics.update(_epoch_metrics(val_loss, val_correct, n_val, "val_"))
    return metrics


def _ending(
    exc: BaseException, watchdog: Watchdog, cluster: ClusterSpec, epoch: int, epochs: int
) -> Exception:
    """The one-line error for a training loop that ended early (`epoch` epochs finished)."""
    import tensorflow as tf  # already imported by make_multiworker_strategy

    # A stop signal can land while TensorFlow raises a peer's failure: pybind then turns both into a
    # RuntimeError. Whatever ends the loop after Ctrl-C or SIGTERM, the user asked for it.
    kept = "no epoch finished"
    if epoch:
        kept = f"epoch {epoch} is checkpointed: restart every worker with --resume"
    if isinstance(exc, KeyboardInterrupt) or watchdog.signal_received is not None:
        return WorkerInterrupted(f"interrupted during epoch {epoch + 1}/{epochs}; {kept}")
    if not isinstance(exc, tf.errors.OpError):
        return exc if isinstance(exc, Exception) else RuntimeError(str(exc))
    return ClusterBroken(
        f"{_peer_from_error(cluster, exc)} stopped answering during epoch {epoch + 1}/{epochs} "
        f"(killed, crashed or stuck: {type(exc).__name__}); {kept}"
    )


def fit_multiworker(
    config: MultiWorkerFitConfig,
    strategy: Any,
    build_model: Callable[[], Any],
    data: FitData,
    *,
    watchdog: Watchdog,
    resume: ResumePoint | None = None,
    on_epoch_end: Callable[[EpochEnd], None] | None = None,
    progress: Progress | None = None,
) -> MultiWorkerFitResult:
    """Train on every worker in lockstep. `build_model()` returns the compiled model (its optimizer carries
    the recipe: learning-rate schedule, EMA) and runs inside the strategy scope on every worker.
    `resume` and `on_epoch_end` matter on the chief only."""
    from edgecnn.core.tfcompat import import_keras, import_tensorflow

    tf, keras = import_tensorflow(), import_keras()
    cluster = config.cluster
    with watchdog.watch("building the model"), strategy.scope():
        model = build_model()
        model.optimizer.build(model.trainable_variables)
    with watchdog.watch("restoring the checkpoint"):
        initial_epoch = restore_on_every_worker(strategy, cluster, model, resume)
        keys = ["loss", "accuracy", *(["val_loss", "val_accuracy"] if len(data.x_val) else [])]
        history, epoch_seconds = shared_history(strategy, cluster, resume, initial_epoch, keys)
    steps = _steps(tf, keras, strategy, model)
    n_steps = math.ceil(len(data.x_train) / config.global_batch)
    epoch = initial_epoch
    try:
        for epoch in range(initial_epoch, config.epochs):
            t0 = time.perf_counter()
            task = f"epoch {epoch + 1}/{config.epochs}"
            with watchdog.watch(task), Tracker(progress, task, n_steps) as tracker:
                metrics = _run_epoch(steps, strategy, data, config, epoch, tracker, watchdog)
            epoch_seconds.append(time.perf_counter() - t0)
            for key, value in metrics.items():
                history.setdefault(key, []).append(value)
            if cluster.is_chief and on_epoch_end is not None:
                with watchdog.watch(f"writing the checkpoint of epoch {epoch + 1}"):
                    on_epoch_end(EpochEnd(epoch + 1, model, history, epoch_seconds))
        epoch = config.epochs
    except (KeyboardInterrupt, tf.errors.OpError, RuntimeError) as exc:
        raise _ending(exc, watchdog, cluster, epoch, config.epochs) from None
    if getattr(model.optimizer, "use_ema", False):
        model.optimizer.finalize_variable_values(model.trainable_variables)  # as fit does at its end
    return MultiWorkerFitResult(
        model=model,
        history=history,
        epoch_seconds=epoch_seconds,
        epochs_completed=config.epochs,
        initial_epoch=initial_epoch,
        replicas=int(strategy.num_replicas_in_sync),
        per_worker_batch=config.per_worker_batch,
        global_batch=config.global_batch,
    )


def predict_local(model: Any, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities computed on this worker alone. `model.predict` must not be used under the
    strategy: it would shard the images over the workers."""
    out = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 0))
