"""The loud guard: an FP32 export whose accuracy on labelled data is near chance, or far below what
train.json recorded, is almost always fed wrongly (pixels scaled twice or not at all, labels in another
order, another dataset) rather than a bad model. Parity cannot catch it (Keras and ONNX get the same
wrong input), so the export stops with the likely cause instead of shipping a 10% model."""

from __future__ import annotations

from edgecnn.core.errors import EdgecnnError

# Within 1.5x of guessing: no trained classifier fed correctly scores that low.
CHANCE_FACTOR = 1.5
# Percentage points below train.json's test accuracy that no correct export loses on the same test set
# (INT8 is not involved: this is the FP32 graph, which matches Keras within the parity tolerance).
MAX_DROP_VS_TRAINING_PP = 10.0
FIX = (
    "check how the model wants its pixels (--normalization raw|unit|tf|imagenet; a model with its own "
    "Rescaling layer takes raw 0-255), the class order (output i must be the dataset's class i) and the "
    "dataset (--dataset); "
    "--no-accuracy-guard exports anyway"
)


def check_fp32_accuracy(
    accuracy: float,
    num_classes: int,
    dataset: str,
    normalization: str,
    recorded_accuracy: float | None,
) -> None:
    """Raise with one line naming the likely cause when `accuracy` (0-1) is implausible."""
    chance = 1.0 / num_classes
    where = f"FP32 accuracy {accuracy * 100:.2f}% on {dataset} test images (normalization {normalization})"
    if accuracy <= CHANCE_FACTOR * chance:
        raise EdgecnnError(
            f"{where} is at or below chance level ({chance * 100:.1f}% for {num_classes} classes): "
            f"the input is probably fed wrongly, not the model; {FIX}; nothing was written"
        )
    if recorded_accuracy is not None and (recorded_accuracy - accuracy) * 100.0 > MAX_DROP_VS_TRAINING_PP:
        raise EdgecnnError(
            f"{where} is far below the {recorded_accuracy * 100:.2f}% train.json recorded: the input is "
            f"probably fed differently than at training; {FIX}; nothing was written"
        )
