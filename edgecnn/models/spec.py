"""The model schema: a `ModelSpec` is an input shape, a body of `LayerSpec`s and a training `Recipe`.

Every field is validated on construction (an `EdgecnnError` naming the field), including the layer
shapes (`edgecnn.models.size`), so a spec that exists can be counted, built and trained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.models.layers import LayerSpec, require_positive_int
from edgecnn.models.size import layer_table

OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class Recipe:
    """How the source tutorial trained the model, so defaults reproduce it."""

    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int
    published_accuracy: float | None = None  # fraction, on the real test set
    published_note: str = ""
    lr_schedule: str = "constant"  # onecycle: linear warm-up to learning_rate, cosine decay to ~0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise EdgecnnError(
                f"recipe optimizer {self.optimizer!r} is unknown; use one of {', '.join(OPTIMIZERS)}"
            )
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 10):
            raise EdgecnnError(
                f"recipe 'learning_rate' must be a number in (0, 10), got {self.learning_rate!r}"
            )
        require_positive_int(self.epochs, "recipe", "epochs")
        require_positive_int(self.batch_size, "recipe", "batch_size")
        if self.lr_schedule not in LR_SCHEDULES:
            raise EdgecnnError(f"recipe 'lr_schedule' must be one of {', '.join(LR_SCHEDULES)}")
        if self.published_accuracy is not None and not 0 < self.published_accuracy <= 1:
            raise EdgecnnError("recipe 'published_accuracy' must be a fraction in (0, 1]")


@dataclass(frozen=True)
class ModelSpec:
    """One architecture: the body layers (the softmax head is implied) and the recipe that trains it."""

    name: str
    input_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int
    layers: tuple[LayerSpec, ...]
    recipe: Recipe
    source: str = ""  # where the architecture and recipe come from
    default_dataset: str = "mnist"
    spec_path: str | None = None  # set for user spec files
    notes: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name or ""):
            raise EdgecnnError(f"model name {self.name!r} must be letters, digits, '-', '_' or '.'")
        if len(self.input_shape) != 3 or any(
            not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in self.input_shape
        ):
            raise EdgecnnError(
                f"'input_shape' must be three positive integers [H, W, C], got {self.input_shape!r}"
            )
        require_positive_int(self.num_classes, "model", "num_classes")
        if self.num_classes < 2:
            raise EdgecnnError("'num_classes' must be at least 2")
        if not self.layers:
            raise EdgecnnError("a model needs at least one layer")
        layer_table(self)  # raises on shapes that collapse or a dense on a spatial input

    def to_dict(self) -> dict[str, Any]:
        """The spec in the same form a user spec file uses (so a run's spec can be saved and reused)."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "dataset": self.default_dataset,
            "source": self.source,
            "recipe": {
                "optimizer": self.recipe.optimizer,
                "learning_rate": self.recipe.learning_rate,
                "epochs": self.recipe.epochs,
                "batch_size": self.recipe.batch_size,
                "lr_schedule": self.recipe.lr_schedule,
                "published_accuracy": self.recipe.published_accuracy,
                "published_note": self.recipe.published_note,
            },
            "layers": [layer.to_dict() for layer in self.layers],
        }
