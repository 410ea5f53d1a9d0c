"""A fresh model for a run: the spec's architecture compiled with the recipe's optimizer and loss.

One home for both training paths (one process under a local strategy, and every worker of a
multi-worker cluster); build it inside the strategy's scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgecnn.models import ModelSpec, build_keras_model
from edgecnn.training.optimizer import make_optimizer
from edgecnn.training.resolved import ResolvedConfig, steps_per_epoch

LOSS = "sparse_categorical_crossentropy"


def compile_fresh_model(
    keras: Any,
    spec: ModelSpec,
    resolved: ResolvedConfig,
    n_train: int,
    *,
    workers: int = 1,
    metrics: Sequence[str] = ("accuracy",),
) -> Any:
    """The one-cycle schedule counts the steps of the global batch (per-worker batch x workers), as the
    optimizer takes them."""
    model = build_keras_model(spec, seed=resolved.seed)
    optimizer = make_optimizer(
        keras,
        resolved.optimizer,
        resolved.learning_rate,
        lr_schedule=resolved.lr_schedule,
        total_steps=resolved.epochs * steps_per_epoch(n_train, resolved.batch_size * workers),
        ema_momentum=resolved.ema_momentum,
    )
    model.compile(optimizer=optimizer, loss=LOSS, metrics=list(metrics) or None)
    return model
