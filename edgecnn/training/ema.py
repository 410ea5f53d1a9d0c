"""Weight averaging (EMA): how long the average runs, and swapping the averaged weights in.

The kept weights are an exponential moving average over roughly the last 10% of the optimizer steps
(at most EMA_MAX_HORIZON steps). The optimizer's trajectory is exactly the recipe's; only the final
(and evaluated) weights are averaged, which removes most of the end-of-run noise of constant-learning-
rate recipes (measured on keras-convnet after one epoch, 3 seeds: 97.6-98.4% without, 98.7-98.8% with).
Keras keeps the average inside the optimizer (`use_ema`); nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

EMA_MAX_HORIZON = 100


def ema_momentum_for(total_steps: int) -> float:
    horizon = min(EMA_MAX_HORIZON, max(1, total_steps // 10))
    return round(1.0 - 1.0 / horizon, 6)


@contextlib.contextmanager
def averaged_weights(model: Any) -> Iterator[Any]:
    """Temporarily load the optimizer's moving-average weights into `model` (e.g. to score mid-run)."""
    opt = getattr(model, "optimizer", None)
    averages = (
        getattr(opt, "_model_variables_moving_average", None) if getattr(opt, "use_ema", False) else None
    )
    if not averages:
        yield model
        return
    variables = list(opt._trainable_variables)
    raw = [v.numpy() for v in variables]
    for var, avg in zip(variables, averages, strict=True):
        if avg is not None:
            var.assign(avg)
    try:
        yield model
    finally:
        for var, value in zip(variables, raw, strict=True):
            var.assign(value)


def finalize_averaged_weights(model: Any) -> None:
    """Swap the averaged weights in for good, as `fit` does at its end (for a run whose fit had no
    epoch left to do, e.g. one interrupted right after its last checkpoint)."""
    if getattr(model.optimizer, "use_ema", False):
        model.optimizer.finalize_variable_values(model.trainable_weights)
