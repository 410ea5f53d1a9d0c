"""The ResNet-style model of `make bench-peers` (the fourth architecture family beside keras-convnet,
tf1-cnn and MobileNetV2): a ResNet-8 for 28x28x1 MNIST, three stages of one basic residual block
(3x3 conv -> BatchNorm -> ReLU -> 3x3 conv -> BatchNorm, + identity or a strided 1x1 projection, ReLU)
at 16, 32 and 64 filters, global average pooling and a softmax Dense. Full-width convs with residual
Adds and BatchNorm folded at export: the shape of a small server-side classifier rather than a
mobile one. Trained briefly on real MNIST, normalized as edgecnn's mnist dataset says.

Benchmark code, not part of the edgecnn package: it imports TensorFlow freely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NAME = "resnet8"
TRAIN_IMAGES = 20000


def build(keras: Any) -> Any:
    layers = keras.layers
    inputs = keras.Input((28, 28, 1), name="input")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        shortcut = x
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
            shortcut = layers.BatchNormalization()(shortcut)
        x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=NAME)


def train_resnet(work: Path, data_dir: Path | None, epochs: int, log) -> Path:
    """model.keras under work/<NAME>/run (cached), trained on the first TRAIN_IMAGES MNIST digits."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.data import load_dataset

    run = work / NAME / "run"
    model_path = run / "model.keras"
    if model_path.exists():
        log(f"[{NAME}] reusing trained model {model_path}")
        return model_path
    keras = import_keras()
    ds = load_dataset("mnist", data_dir, download=False)
    x = ds.normalization.apply(ds.x_train[:TRAIN_IMAGES]).astype(np.float32)
    model = build(keras)
    for layer in model.layers:
        # Keras' default momentum 0.99: after one short epoch the moving statistics have barely left
        # their initial values and inference (which uses them) is near chance (measured: 30%).
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    log(f"[{NAME}] training ResNet-8 on {len(x)} MNIST digits, {epochs} epoch(s)")
    model.fit(x, ds.y_train[:TRAIN_IMAGES], batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    x_test = ds.normalization.apply(ds.x_test).astype(np.float32)
    acc = float(np.mean(model.predict(x_test, batch_size=500, verbose=0).argmax(-1) == ds.y_test))
    log(f"[{NAME}] Keras test accuracy {acc:.4f} on {len(x_test)} images")
    run.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    return model_path
