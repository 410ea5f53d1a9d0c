"""train.json: the document a finished run leaves. Its model/dataset/test_accuracy facts come from the
typed `TrainRecord` (what `export` reads back); the rest (config, history, timings, environment, ...)
is merged around them here, in train.json's key order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.core.environment import environment_info
from edgecnn.core.version import __version__
from edgecnn.models import ModelSpec, params_and_macs
from edgecnn.training.record import TrainRecord
from edgecnn.training.resolved import ResolvedConfig
from edgecnn.training.scoring import TestScore
from edgecnn.training.train_data import TrainingData

MODEL_KEYS = ("name", "spec", "params", "macs", "source", "spec_path")
DATASET_KEYS = (
    "name",
    "source",
    "class_labels",
    "normalization",
    "input_shape",
    "train_samples",
    "val_samples",
    "test_samples",
    "limit",
    "loader",
    "split",
)


@dataclass(frozen=True)
class FinishedRun:
    """Everything train.json records about a run, gathered by `train`."""

    resolved: ResolvedConfig
    spec: ModelSpec
    data: TrainingData
    strategy: str
    replicas: int
    epochs_completed: int
    resumed_from_epoch: int | None
    history: dict[str, list[float]]
    score: TestScore
    model_path: Path  # resolved
    run_dir: Path
    plots: tuple[Path, ...]
    timings: dict[str, Any]
    environment: dict[str, Any]
    # More of train.json's "strategy" section: a multi-worker run's workers and batches, a mirrored
    # run's note when it had only one device.
    strategy_details: dict[str, Any] = field(default_factory=dict)


def train_record(run: FinishedRun) -> TrainRecord:
    """The train -> export hand-off for this run."""
    params, macs = params_and_macs(run.spec)
    ds = run.data
    return TrainRecord(
        model_name=run.spec.name,
        dataset=ds.name,
        class_labels=tuple(ds.class_labels),
        normalization=ds.normalization,
        input_shape=ds.input_shape,
        params=params,
        macs=macs,
        test_accuracy=run.score.accuracy,
        split=ds.split,
    )


def _ordered(section: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: section[key] for key in keys}


def train_document(run: FinishedRun) -> dict[str, Any]:
    facts = train_record(run).to_dict()
    spec, data = run.spec, run.data
    model = {
        **facts["model"],
        "spec": spec.to_dict(),
        "source": spec.source,
        "spec_path": spec.spec_path,
    }
    dataset = {
        **facts["dataset"],
        "source": data.source,
        "train_samples": data.n_train,
        "val_samples": data.n_val,
        "test_samples": data.n_test,
        "limit": run.resolved.limit,
        "loader": data.loader(),
    }
    return {
        "edgecnn_version": __version__,
        "config": dataclasses.asdict(run.resolved),
        "model": _ordered(model, MODEL_KEYS),
        "dataset": _ordered(dataset, DATASET_KEYS),
        "strategy": {"name": run.strategy, "replicas": run.replicas, **run.strategy_details},
        "epochs_completed": run.epochs_completed,
        "resumed_from_epoch": run.resumed_from_epoch,
        "history": run.history,
        "test_accuracy": facts["test_accuracy"],
        "test_loss": run.score.loss,
        # The tutorial's figure was measured on the spec's own dataset: beside any other (a folder of
        # the user's images, Fashion-MNIST for an MNIST net) it would read as a target it is not.
        "published_accuracy": spec.recipe.published_accuracy if data.name == spec.default_dataset else None,
        "model_path": str(run.model_path),
        "run_dir": str(run.run_dir.resolve()),
        "plots": [p.name for p in run.plots],
        "timings": run.timings,
        "environment": run.environment,
    }


def training_environment(tf: Any) -> dict[str, Any]:
    """The host facts every edgecnn document carries, plus the devices TensorFlow trained on."""
    env = environment_info()
    env["tensorflow_devices"] = [d.name for d in tf.config.list_logical_devices()]
    return env
