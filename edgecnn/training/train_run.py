"""`edgecnn train`: train a registered (or user-spec) CNN on real data and leave a complete run directory.

The run directory is written in place so an interrupted run can be resumed: after every finished epoch
the model (with optimizer state) is saved atomically to `checkpoint-epochN.keras` and
`checkpoint-state.json` points at it. `model.keras` and `train.json` appear only when training
finished, each written atomically; the checkpoint files are then removed.

`train` only sequences the steps; each lives in its own module of this package. --strategy multiworker
takes its own path (`training.multiworker_run`): Keras 3's `fit` does not work across workers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.progress import Progress
from edgecnn.core.scratch import scratch_dir
from edgecnn.core.tfcompat import import_keras, import_tensorflow
from edgecnn.models import ModelSpec, get_model_spec
from edgecnn.training.callbacks import epoch_checkpoint, progress_reporter
from edgecnn.training.distribute import make_strategy
from edgecnn.training.ema import finalize_averaged_weights
from edgecnn.training.finish import RunSetup, Trained, finish_training, load_data, timed
from edgecnn.training.fresh_model import compile_fresh_model
from edgecnn.training.multiworker_run import train_multiworker
from edgecnn.training.resolved import ResolvedConfig, resolve
from edgecnn.training.run_dir import (
    ResumeState,
    RunState,
    discard_unstarted_run,
    precheck_run_dir,
    prepare_run_dir,
    read_resume_state,
    restore_previous_run,
)
from edgecnn.training.scoring import predict_probabilities
from edgecnn.training.streaming import stream_errors
from edgecnn.training.train_config import TrainConfig, TrainingInterrupted, TrainResult
from edgecnn.training.train_data import TrainingData


@dataclass(frozen=True)
class _Built:
    model: Any
    replicas: int
    note: str | None


def _build(resolved: ResolvedConfig, spec: ModelSpec, n_train: int, resume: ResumeState | None) -> _Built:
    """The strategy, then the model inside its scope: the checkpoint's, or a fresh compiled one."""
    tf, keras = import_tensorflow(), import_keras()
    local = make_strategy(tf, resolved.strategy)
    keras.utils.set_random_seed(resolved.seed + (resume.epoch if resume else 0))
    with local.strategy.scope():
        if resume is not None:
            try:
                model = keras.models.load_model(resume.checkpoint)
            except Exception as exc:  # noqa: BLE001 - a corrupt checkpoint is the user's problem to know about
                raise EdgecnnError(
                    f"cannot load checkpoint {resume.checkpoint} ({type(exc).__name__}); "
                    "start again with --force"
                ) from None
        else:
            model = compile_fresh_model(keras, spec, resolved, n_train)
    return _Built(model, local.replicas, local.note)


def _fit(
    model: Any,
    data: TrainingData,
    resolved: ResolvedConfig,
    state: RunState,
    run_dir: Path,
    callbacks: list[Any],
) -> None:
    """Run the epochs not yet done; Ctrl-C becomes TrainingInterrupted naming what was kept."""
    if state.epoch >= resolved.epochs:
        # Interrupted after the last epoch's checkpoint: fit has nothing left to do, so swap in the
        # averaged weights here, as fit would have at its end.
        finalize_averaged_weights(model)
        return
    try:
        # A stream's decoded images are cached in a scratch file for the later epochs, removed after.
        with stream_errors(), scratch_dir("train-cache") as cache_dir:
            model.fit(
                **data.fit_arguments(resolved.batch_size, cache_dir),
                epochs=resolved.epochs,
                initial_epoch=state.epoch,
                callbacks=callbacks,
                verbose=0,
            )
    except KeyboardInterrupt:
        done = state.epoch
        if done >= resolved.epochs:
            raise TrainingInterrupted(
                f"interrupted after the last epoch ({done}/{resolved.epochs}) was checkpointed in {run_dir}, "
                "before the test score and model.keras: finish it with the same options plus --resume"
            ) from None
        if done == 0:
            kept = " (the run it was replacing is back in place)" if restore_previous_run(run_dir) else ""
            raise TrainingInterrupted(
                f"interrupted during epoch 1; no epoch finished, so nothing new was kept in {run_dir}{kept}"
            ) from None
        raise TrainingInterrupted(
            f"interrupted during epoch {done + 1}/{resolved.epochs}; epoch {done} is checkpointed in "
            f"{run_dir}: continue it with the same options plus --resume"
        ) from None


def train(
    config: TrainConfig, *, callbacks: Sequence[Any] = (), progress: Progress | None = None
) -> TrainResult:
    """Train `config.model` and write the run directory; `callbacks` are extra Keras callbacks (hooks),
    `progress` receives one task per epoch (batches done, loss/accuracy)."""
    t_start = time.perf_counter()
    spec = get_model_spec(config.model)
    if config.strategy == "multiworker":
        if callbacks:
            raise EdgecnnError(
                "extra Keras callbacks run inside model.fit, which --strategy multiworker does not use; "
                "train without them or with another strategy"
            )
        return train_multiworker(config, spec, progress=progress, t_start=t_start)
    run_dir = config.run_dir_for(spec.name)
    precheck_run_dir(run_dir, config)
    import_tensorflow()  # a device without TensorFlow gets the install hint before any data work

    timings: dict[str, Any] = {}
    with timed(timings, "load_data_s"):
        data = load_data(config, spec)
    resolved = resolve(config, spec, data.n_train)
    resume = read_resume_state(run_dir, resolved) if config.resume else None
    keras = import_keras()  # loaded outside the build timing, as the model build is what build_s measures
    with timed(timings, "build_s"):
        built = _build(resolved, spec, data.n_train, resume)
    created = not run_dir.exists()
    prepare_run_dir(run_dir, clear=config.force and resume is None)

    state = RunState.start(resume)
    cbs = [epoch_checkpoint(keras, run_dir, resolved, state), *callbacks]
    if progress is not None:
        cbs.append(progress_reporter(keras, progress, resolved.epochs))
    try:
        with timed(timings, "train_s"):
            _fit(built.model, data, resolved, state, run_dir, cbs)
    except BaseException:
        if state.epoch == 0:  # nothing checkpointed: no run folder is left behind (an old run returns)
            discard_unstarted_run(run_dir, created)
        raise
    timings["epoch_seconds"] = state.epoch_seconds
    trained = Trained(
        model=built.model,
        predict=lambda x: predict_probabilities(built.model, x),
        history=state.history,
        epochs_completed=int(state.epoch),
        resumed_from_epoch=resume.epoch if resume else None,
        replicas=built.replicas,
        strategy_details={} if built.note is None else {"note": built.note},
    )
    return finish_training(RunSetup(config, spec, data, resolved, run_dir, timings, t_start), trained)
