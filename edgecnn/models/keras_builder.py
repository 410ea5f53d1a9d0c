"""Keras models from specs; Keras is imported only when a model is built (the rest of edgecnn.models
stays TensorFlow-free)."""

from __future__ import annotations

from typing import Any

from edgecnn.core.tfcompat import import_keras
from edgecnn.models.layers import HEAD_NAME
from edgecnn.models.size import layer_table
from edgecnn.models.spec import ModelSpec


def build_keras_model(spec: ModelSpec, *, seed: int | None = None) -> Any:
    """A functional Keras model for `spec`: input named "input", softmax head named "probabilities"."""

    keras = import_keras()
    layers = keras.layers
    inputs = keras.Input(shape=spec.input_shape, name="input")
    x = inputs
    infos = layer_table(spec)
    for layer, info in zip(spec.layers, infos, strict=False):
        name = info.name
        if layer.kind == "conv":
            x = layers.Conv2D(
                layer.filters,
                layer.window,
                strides=layer.strides,
                padding=layer.padding,
                activation=layer.activation,
                use_bias=layer.use_bias,
                name=name,
            )(x)
        elif layer.kind == "pool":
            cls = layers.MaxPooling2D if layer.mode == "max" else layers.AveragePooling2D
            x = cls(layer.window, strides=layer.strides, padding=layer.padding, name=name)(x)
        elif layer.kind == "dense":
            x = layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias, name=name)(x)
        elif layer.kind == "dropout":
            x = layers.Dropout(layer.rate, seed=seed, name=name)(x)
        elif layer.kind == "flatten":
            x = layers.Flatten(name=name)(x)
        elif layer.kind == "relu":
            x = layers.ReLU(name=name)(x)
        elif layer.kind == "batchnorm":
            # momentum 0.9 (PyTorch's default) so the moving statistics settle within a few dozen steps;
            # Keras' 0.99 leaves them near their initial values in short --limit runs.
            x = layers.BatchNormalization(momentum=0.9, name=name)(x)
        elif layer.kind == "gap":
            x = layers.GlobalAveragePooling2D(name=name)(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name=HEAD_NAME)(x)
    return keras.Model(inputs, outputs, name=spec.name)
