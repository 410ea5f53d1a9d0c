"""Small Keras classifiers built the way users build them, trained briefly on real MNIST so that their
accuracy (and so INT8's accuracy drop) means something: the layers issue 23 names (Normalization
adapted and explicit, in-model Resizing, squeeze-and-excitation, channel shuffle, swish, hard-swish, a
separate Softmax layer, grouped convolutions, LayerNormalization). Every model takes raw 0-255 pixels
and preprocesses inside (Rescaling or Normalization), as keras.io's examples do.

Shared by `benchmarks/bench_zoo.py` (the conformance table) and the tests (tests/test_user_models.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

SHAPE = (28, 28, 1)
CLASSES = 10
# MNIST's pixel statistics (0-255): what an adapted Normalization layer learns, stated explicitly.
MNIST_MEAN, MNIST_STD = 33.32, 78.57


def _stem(keras: Any, inp: Any, kind: str, x_adapt: np.ndarray | None) -> Any:
    if kind == "adapted":
        norm = keras.layers.Normalization(name="normalization")
        assert x_adapt is not None
        norm.adapt(x_adapt)
        return norm(inp)
    if kind == "explicit":
        return keras.layers.Normalization(mean=MNIST_MEAN, variance=MNIST_STD**2, name="normalization")(inp)
    return keras.layers.Rescaling(1.0 / 255.0)(inp)


def _head(keras: Any, x: Any, *, softmax_layer: bool = False) -> Any:
    # Flatten keeps where the strokes are (a global average of two small convs does not: ~50% on MNIST).
    x = keras.layers.Flatten()(x)
    if softmax_layer:
        return keras.layers.Softmax()(keras.layers.Dense(CLASSES)(x))
    return keras.layers.Dense(CLASSES, activation="softmax")(x)


def _convs(keras: Any, x: Any, activation: str = "relu") -> Any:
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation=activation)(x)
    return keras.layers.Conv2D(32, 3, strides=2, padding="same", activation=activation)(x)


def _squeeze_excite(keras: Any, x: Any) -> Any:
    channels = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = keras.layers.Dense(channels // 4, activation="relu")(s)
    s = keras.layers.Dense(channels, activation="sigmoid")(s)
    return keras.layers.Multiply()([x, s])


def _channel_shuffle(keras: Any, x: Any, groups: int = 2) -> Any:
    h, w, c = x.shape[1:]
    x = keras.layers.Reshape((h, w, groups, c // groups))(x)
    x = keras.layers.Permute((1, 2, 4, 3))(x)
    return keras.layers.Reshape((h, w, c))(x)


def build(name: str, keras: Any, x_adapt: np.ndarray | None = None) -> Any:
    """One zoo model (untrained); `x_adapt`: raw training images for the adapted Normalization."""
    inp = keras.Input(SHAPE, name="input")
    stem = {"norm-adapted": "adapted", "norm-explicit": "explicit"}.get(name, "rescaling")
    x = _stem(keras, inp, stem, x_adapt)
    if name in ("norm-adapted", "norm-explicit"):
        x = _convs(keras, x)
    elif name == "resizing":
        x = keras.layers.Resizing(32, 32)(x)
        x = _convs(keras, x)
    elif name == "squeeze-excite":
        x = _squeeze_excite(keras, _convs(keras, x))
    elif name == "channel-shuffle":
        x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
        x = _channel_shuffle(keras, x)
        x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    elif name in ("swish", "hard-swish"):
        x = _convs(keras, x, activation="swish" if name == "swish" else "hard_swish")
    elif name == "softmax-layer":
        x = _convs(keras, x)
        return keras.Model(inp, _head(keras, x, softmax_layer=True), name=name)
    elif name == "grouped-conv":
        x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(32, 3, strides=2, padding="same", groups=4, activation="relu")(x)
    elif name == "layer-norm":
        x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(x)
        x = keras.layers.LayerNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    else:
        raise KeyError(name)
    return keras.Model(inp, _head(keras, x), name=name)


NAMES = (
    "norm-adapted",
    "norm-explicit",
    "resizing",
    "squeeze-excite",
    "channel-shuffle",
    "swish",
    "hard-swish",
    "softmax-layer",
    "grouped-conv",
    "layer-norm",
)


def train_briefly(
    name: str, x: np.ndarray, y: np.ndarray, *, steps: int = 300, batch: int = 64, seed: int = 0
) -> Any:
    """`name` built and trained for `steps` Adam steps on raw 0-255 images `x` (N, 28, 28, 1)."""
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    n = min(len(x), steps * batch)
    model = build(name, keras, x[:2000])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x[:n], y[:n], epochs=1, batch_size=batch, verbose=0)
    return model


def keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=500, verbose=0), axis=1) == y))


def raw_mnist(data_dir: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as float32 raw pixels (N, 28, 28, 1): train x, y, test x, y."""
    from edgecnn.data import load_dataset

    ds = load_dataset("mnist", data_dir, download=False)

    def f(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        return a[..., None] if a.ndim == 3 else a

    return f(ds.x_train), ds.y_train, f(ds.x_test), ds.y_test
