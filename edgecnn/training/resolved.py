"""The config with every recipe default filled in: what train.json records under "config" and what
--resume compares against the interrupted run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgecnn.models import ModelSpec
from edgecnn.training.ema import ema_momentum_for
from edgecnn.training.train_config import TrainConfig

# Keys of the resolved config that must match for --resume to continue the same training run. The
# user's options come first: a derived value (the EMA momentum follows --limit and --epochs) must not be
# named as the difference when the option that caused it can be.
RESUME_KEYS = (
    "model",
    "dataset",
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "seed",
    "validation_split",
    "limit",
    "model_spec",
    "lr_schedule",
    "ema_momentum",
    "workers",  # the global batch (and so the schedule) is the per-worker batch times the workers
)
# The option that sets each key, for the message that says which one differs.
RESUME_OPTIONS = {
    "model": "--model",
    "dataset": "--dataset",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "optimizer": "--optimizer",
    "learning_rate": "--lr",
    "seed": "--seed",
    "validation_split": "--val-split",
    "limit": "--limit",
    "ema_momentum": "--ema/--no-ema",
    "workers": "the number of workers in TF_CONFIG",
}


@dataclass(frozen=True)
class ResolvedConfig:
    """Field order is train.json's "config" order (it is written with `dataclasses.asdict`)."""

    model: str
    model_spec: dict[str, Any]
    dataset: str
    epochs: int
    batch_size: int  # per worker (TensorFlow's convention); the global batch is batch_size x workers
    optimizer: str
    learning_rate: float
    lr_schedule: str
    ema_momentum: float | None
    seed: int
    validation_split: float
    limit: int | None
    strategy: str
    workers: int
    data_dir: str | None
    output_dir: str


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def resolve(config: TrainConfig, spec: ModelSpec, n_train: int, workers: int = 1) -> ResolvedConfig:
    """`workers`: processes of a multi-worker cluster; each takes `batch_size` images per step, so the
    EMA horizon counts the steps of the global batch."""
    r = spec.recipe
    epochs = config.epochs or r.epochs
    batch_size = config.batch_size or r.batch_size
    total_steps = epochs * steps_per_epoch(n_train, batch_size * workers)
    return ResolvedConfig(
        model=spec.name,
        model_spec=spec.to_dict(),
        dataset=config.dataset or spec.default_dataset,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=config.optimizer or r.optimizer,
        learning_rate=config.learning_rate or r.learning_rate,
        lr_schedule=r.lr_schedule,
        ema_momentum=ema_momentum_for(total_steps) if config.ema else None,
        seed=config.seed,
        validation_split=config.validation_split,
        limit=config.limit,
        strategy=config.strategy,
        workers=workers,
        data_dir=None if config.data_dir is None else str(config.data_dir),
        output_dir=str(config.run_dir_for(spec.name)),
    )
