"""`train` with --strategy multiworker: the same command on every worker, each with its own TF_CONFIG.

The order matters, because once TensorFlow forms the cluster a worker that stops leaves the others
waiting in C++:

1. every worker, alone: validate TF_CONFIG, import TensorFlow, load the data and resolve the config; the
   chief also checks the run directory and reads the --resume state. A failure here is this worker's
   refusal, which the rendezvous passes on, so every worker stops at once with the reason.
2. rendezvous (`training.rendezvous`): wait, with progress and --connect-timeout, for every peer's port.
3. under a `Watchdog` (Ctrl-C, SIGTERM and stalls end the worker with one line): form the cluster and
   train with `fit_multiworker` (global batch = --batch-size per worker x workers); the chief checkpoints
   each epoch into the run directory with the one-process path's `checkpoint_epoch`.
4. each worker scores the test set on its own (`predict_local`); only the chief writes plots, model.keras
   and train.json. The other workers write nothing, so there is no scratch space to clean up.
"""

from __future__ import annotations

from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.progress import Progress
from edgecnn.core.tfcompat import import_keras, import_tensorflow
from edgecnn.data.dataset_registry import DATASETS
from edgecnn.models import ModelSpec
from edgecnn.training.callbacks import checkpoint_epoch
from edgecnn.training.cluster import ClusterSpec, cluster_from_env
from edgecnn.training.finish import RunSetup, Trained, finish_training, load_data, timed
from edgecnn.training.fresh_model import compile_fresh_model
from edgecnn.training.multiworker import (
    EpochEnd,
    FitData,
    MultiWorkerFitConfig,
    ResumePoint,
    fit_multiworker,
    make_multiworker_strategy,
    predict_local,
)
from edgecnn.training.rendezvous import RendezvousConfig, rendezvous
from edgecnn.training.resolved import ResolvedConfig, resolve
from edgecnn.training.run_dir import (
    ResumeState,
    RunState,
    precheck_run_dir,
    prepare_run_dir,
    read_resume_state,
)
from edgecnn.training.train_config import TrainConfig, TrainResult
from edgecnn.training.train_data import ArrayInputs
from edgecnn.training.watchdog import Watchdog


def _preflight(
    config: TrainConfig, spec: ModelSpec, cluster: ClusterSpec, timings: dict[str, Any], t_start: float
) -> tuple[RunSetup, ResumeState | None]:
    """Step 1: everything that can refuse, on this worker alone (run directory and resume: chief only)."""
    run_dir = config.run_dir_for(spec.name)
    if cluster.is_chief:
        precheck_run_dir(run_dir, config)
    with timed(timings, "import_s"):  # seconds on a loaded machine, when every worker imports at once
        import_tensorflow()  # a worker without TensorFlow gets the install hint before any data work
    with timed(timings, "load_data_s"):
        data = load_data(config, spec)
    if not isinstance(data.inputs, ArrayInputs):
        # Each worker would need its own shard of the file stream; the loop feeds in-memory slices.
        raise EdgecnnError(
            f"--strategy multiworker trains on in-memory datasets ({', '.join(DATASETS)}); a folder "
            "dataset streams from disk: train it with --strategy default or mirrored"
        )
    resolved = resolve(config, spec, data.n_train, workers=cluster.size)
    resume = read_resume_state(run_dir, resolved) if config.resume and cluster.is_chief else None
    return RunSetup(config, spec, data, resolved, run_dir, timings, t_start), resume


def _meet(
    config: TrainConfig, cluster: ClusterSpec, refusal: EdgecnnError | None, progress: Progress | None
) -> None:
    """Step 2; a refusing worker tells its peers, then fails with its own error (and exit code)."""
    meeting = RendezvousConfig(
        cluster, timeout_s=config.connect_timeout_s, refusal=None if refusal is None else str(refusal)
    )
    try:
        rendezvous(meeting, progress=progress)
    except EdgecnnError:
        if refusal is not None:
            raise refusal from None
        raise


def _model_builder(resolved: ResolvedConfig, spec: ModelSpec, n_train: int, workers: int) -> Any:
    """The compiled fresh model, built inside the strategy scope on every worker. Its one-cycle schedule
    counts the steps of the global batch, as the cluster takes them."""

    def build() -> Any:
        keras = import_keras()
        keras.utils.set_random_seed(resolved.seed)
        # The loop computes its own metrics in the train step: compiled with the loss alone.
        return compile_fresh_model(keras, spec, resolved, n_train, workers=workers, metrics=())

    return build


def _resume_point(resume: ResumeState | None) -> ResumePoint | None:
    if resume is None:
        return None
    return ResumePoint(resume.checkpoint, resume.epoch, resume.history, resume.epoch_seconds)


def _train(
    setup: RunSetup,
    cluster: ClusterSpec,
    resume: ResumeState | None,
    watchdog: Watchdog,
    progress: Progress | None,
) -> Trained:
    """Step 3, inside the watchdog: form the cluster and run the epochs."""
    config, data, resolved, run_dir = setup.config, setup.data, setup.resolved, setup.run_dir
    with timed(setup.timings, "connect_s"):
        strategy = make_multiworker_strategy(cluster, watchdog)
    if cluster.is_chief:
        prepare_run_dir(run_dir, clear=config.force and resume is None)
    state = RunState.start(resume)

    def on_epoch_end(end: EpochEnd) -> None:  # chief only
        last = {key: values[-1] for key, values in end.history.items()}
        checkpoint_epoch(end.model, run_dir, resolved, state, end.epoch, last, end.epoch_seconds[-1])

    fit_config = MultiWorkerFitConfig(
        cluster,
        resolved.epochs,
        resolved.batch_size,
        seed=resolved.seed,
        stall_timeout_s=config.connect_timeout_s,
    )
    with timed(setup.timings, "train_s"):
        result = fit_multiworker(
            fit_config,
            strategy,
            _model_builder(resolved, setup.spec, data.n_train, cluster.size),
            FitData(data.inputs.x_train, data.y_train, data.inputs.x_val, data.y_val),
            watchdog=watchdog,
            resume=_resume_point(resume),
            on_epoch_end=on_epoch_end,
            progress=progress,
        )
    setup.timings["epoch_seconds"] = result.epoch_seconds
    return Trained(
        model=result.model,
        predict=lambda x: predict_local(result.model, x),
        history=result.history,
        epochs_completed=result.epochs_completed,
        resumed_from_epoch=result.initial_epoch or None,
        replicas=result.replicas,
        strategy_details={
            "workers": cluster.size,
            "per_worker_batch": result.per_worker_batch,
            "global_batch": result.global_batch,
            "chief": cluster.describe([0]),  # the one worker that writes the run directory
            "this_worker": cluster.describe([cluster.rank]),
        },
    )


def train_multiworker(
    config: TrainConfig, spec: ModelSpec, *, progress: Progress | None, t_start: float
) -> TrainResult:
    cluster = cluster_from_env()
    timings: dict[str, Any] = {}
    refusal: EdgecnnError | None = None
    setup = resume = None
    try:
        setup, resume = _preflight(config, spec, cluster, timings, t_start)
    except EdgecnnError as exc:
        refusal = exc
    with timed(timings, "rendezvous_s"):
        _meet(config, cluster, refusal, progress)
    assert setup is not None  # _meet raised the refusal otherwise
    with Watchdog(cluster, stall_timeout_s=config.connect_timeout_s) as watchdog:
        trained = _train(setup, cluster, resume, watchdog, progress)
        return finish_training(setup, trained, write=cluster.is_chief)
