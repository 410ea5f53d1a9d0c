"""Which PNGs a finished run writes, and the arrays they need (the conv feature maps come from probing
the trained model). `edgecnn.training.train_plots` only draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.models import ModelSpec, layer_table
from edgecnn.training.scoring import TestScore
from edgecnn.training.train_data import TrainingData


def _conv_layer_names(spec: ModelSpec) -> list[str]:
    return [info.name for info in layer_table(spec) if info.kind == "conv"]


def _test_set_title(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    accuracy = float(np.mean(y_true == y_pred)) if len(y_true) else 0.0
    return f"confusion matrix (test set, accuracy {accuracy:.2%})"


def write_run_plots(
    keras: Any,
    model: Any,
    spec: ModelSpec,
    data: TrainingData,
    score: TestScore,
    history: dict[str, list[float]],
    run_dir: Path,
) -> list[Path]:
    import edgecnn.training.train_plots as plots_train
    from edgecnn.evaluation.confusion import plot_confusion_matrix

    labels = tuple(data.class_labels)
    y_test, y_pred = data.y_test, score.predictions
    paths = [
        plots_train.plot_training_curves(history, run_dir / "training_curves.png"),
        plot_confusion_matrix(
            y_test, y_pred, labels, run_dir / "confusion_matrix.png", title=_test_set_title(y_test, y_pred)
        ),
        plots_train.plot_misclassified(
            data.x_test_uint8, y_test, y_pred, score.probabilities, labels, run_dir / "misclassified.png"
        ),
    ]
    conv_names = _conv_layer_names(spec)
    if conv_names:
        paths += _conv_plots(keras, model, conv_names, data, labels, run_dir)
    return paths


def _conv_plots(
    keras: Any, model: Any, conv_names: list[str], data: TrainingData, labels: tuple[str, ...], run_dir: Path
) -> list[Path]:
    """The first conv's filters, and every conv's feature maps for the first test image."""
    import edgecnn.training.train_plots as plots_train

    kernel = np.asarray(model.get_layer(conv_names[0]).get_weights()[0])
    paths = [plots_train.plot_filters(kernel, run_dir / "filters_first_conv.png", title=conv_names[0])]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in conv_names])
    maps = probe([data.normalization.apply(np.asarray(data.x_test_uint8[:1]))], training=False)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    first = int(data.y_test[0])
    true_label = labels[first] if len(labels) > first else str(first)
    for name, fmap in zip(conv_names, maps, strict=True):
        paths.append(
            plots_train.plot_feature_maps(
                data.x_test_uint8[0],
                np.asarray(fmap)[0],
                name,
                run_dir / f"feature_maps_{name}.png",
                image_label=true_label,
            )
        )
    return paths
