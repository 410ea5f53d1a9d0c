"""The Keras optimizer for a recipe: its class by name, the one-cycle learning-rate schedule, and the
weight-averaging switch (momentum from `edgecnn.training.ema`)."""

from __future__ import annotations

from typing import Any

# One-cycle: linear warm-up over this share of all steps from lr/25 to the recipe's lr, then cosine decay.
ONECYCLE_WARMUP_FRACTION = 0.2


def learning_rate_for(keras: Any, learning_rate: float, lr_schedule: str, total_steps: int) -> Any:
    """The recipe's constant learning rate, or the one-cycle schedule over `total_steps`."""
    if lr_schedule != "onecycle":
        return learning_rate
    total = max(1, total_steps)
    warmup = max(1, int(total * ONECYCLE_WARMUP_FRACTION))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 25.0,
        decay_steps=max(1, total - warmup),
        alpha=0.002,
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )


def make_optimizer(
    keras: Any,
    name: str,
    learning_rate: float,
    *,
    lr_schedule: str,
    total_steps: int,
    ema_momentum: float | None,
) -> Any:
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "nadam": keras.optimizers.Nadam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    ema: dict[str, Any] = {}
    if ema_momentum is not None and ema_momentum > 0:
        ema = {"use_ema": True, "ema_momentum": ema_momentum}
    lr = learning_rate_for(keras, learning_rate, lr_schedule, total_steps)
    return classes[name](learning_rate=lr, **ema)
