"""What every `train` path shares around the training itself: timing its phases, loading the data, and
finishing a trained model into the run directory (test score, plots, train.json, model.keras)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.tfcompat import import_keras, import_tensorflow
from edgecnn.models import ModelSpec
from edgecnn.training.document import FinishedRun, train_document, training_environment
from edgecnn.training.resolved import ResolvedConfig
from edgecnn.training.run_dir import finish_run_dir
from edgecnn.training.run_plots import write_run_plots
from edgecnn.training.scoring import score_probabilities
from edgecnn.training.streaming import stream_errors
from edgecnn.training.train_config import MODEL_FILE, TrainConfig, TrainResult
from edgecnn.training.train_data import TrainingData, load_training_data


@contextlib.contextmanager
def timed(timings: dict[str, Any], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t0


def load_data(config: TrainConfig, spec: ModelSpec) -> TrainingData:
    data = load_training_data(config.dataset or spec.default_dataset, spec, config)
    if data.n_train < 1:
        raise EdgecnnError("no training images left; raise --limit or lower --val-split")
    return data


@dataclass(frozen=True)
class Trained:
    """A finished training loop, whichever path ran it."""

    model: Any
    predict: Callable[[np.ndarray], np.ndarray]  # class probabilities, computed on this process
    history: dict[str, list[float]]
    epochs_completed: int
    resumed_from_epoch: int | None
    replicas: int
    strategy_details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSetup:
    config: TrainConfig
    spec: ModelSpec
    data: TrainingData
    resolved: ResolvedConfig
    run_dir: Path
    timings: dict[str, Any]
    t_start: float


def finish_training(setup: RunSetup, trained: Trained, *, write: bool = True) -> TrainResult:
    """Score the test set and assemble train.json; with `write` (the only or the chief process), also
    draw the plots and write model.keras and train.json, removing the checkpoints."""
    timings, data, run_dir = setup.timings, setup.data, setup.run_dir
    with timed(timings, "evaluate_s"):
        with stream_errors():
            score = score_probabilities(trained.predict(data.test_input()), data.y_test)
    plots: list[Path] = []
    if setup.config.plots and write:
        with timed(timings, "plots_s"):
            plots = write_run_plots(
                import_keras(), trained.model, setup.spec, data, score, trained.history, run_dir
            )
    timings["total_s"] = time.perf_counter() - setup.t_start
    model_path = (run_dir / MODEL_FILE).resolve()
    document = train_document(
        FinishedRun(
            resolved=setup.resolved,
            spec=setup.spec,
            data=data,
            strategy=setup.config.strategy,
            replicas=trained.replicas,
            epochs_completed=trained.epochs_completed,
            resumed_from_epoch=trained.resumed_from_epoch,
            history={k: [float(v) for v in vals] for k, vals in trained.history.items()},
            score=score,
            model_path=model_path,
            run_dir=run_dir,
            plots=tuple(plots),
            timings=timings,
            environment=training_environment(import_tensorflow()),
            strategy_details=trained.strategy_details,
        )
    )
    if write:
        finish_run_dir(trained.model, model_path, run_dir, document)
    return TrainResult.from_document(document)
