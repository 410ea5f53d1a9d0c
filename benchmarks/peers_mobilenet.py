"""The MobileNet-style model of `make bench-peers`: keras.applications.MobileNetV2(alpha=0.35) at 96x96x3
(depthwise convs, BatchNorm, residual Adds, GlobalAveragePool), trained briefly on real MNIST digits
resized to 96x96 RGB and saved as an image-folder dataset, so export, tune and every peer read exactly
the same images through edgecnn's own folder loader.

Benchmark code, not part of the edgecnn package: it imports TensorFlow freely.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NAME = "mobilenetv2-96"
SIZE = 96
TRAIN_IMAGES = 4000
TEST_IMAGES = 2000


def dataset_name(work: Path) -> str:
    return f"folder:{work / NAME / 'data'}"


def make_folder_dataset(root: Path, data_dir: Path | None, n_train: int, n_test: int) -> None:
    """root/{train,test}/<digit>/<i>.png: the first MNIST images, bilinear-resized, grey copied to RGB."""
    from PIL import Image

    from edgecnn.data import load_dataset

    if (root / "done.json").exists():
        return
    mnist = load_dataset("mnist", data_dir, download=False)
    for split, x, y in (
        ("train", mnist.x_train[:n_train], mnist.y_train[:n_train]),
        ("test", mnist.x_test[:n_test], mnist.y_test[:n_test]),
    ):
        for digit in range(10):
            (root / split / str(digit)).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(x, y, strict=True)):
            grey = Image.fromarray(np.asarray(img)[..., 0]).resize((SIZE, SIZE), Image.BILINEAR)
            grey.convert("RGB").save(root / split / str(int(label)) / f"{i:05d}.png")
    (root / "done.json").write_text(json.dumps({"train": n_train, "test": n_test}))


def train_mobilenet(work: Path, data_dir: Path | None, epochs: int, log) -> Path:
    """model.keras under work/<NAME>/run, trained on the folder dataset (cached)."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.data import load_dataset

    run = work / NAME / "run"
    model_path = run / "model.keras"
    if model_path.exists():
        log(f"[{NAME}] reusing trained model {model_path}")
        return model_path
    make_folder_dataset(work / NAME / "data", data_dir, TRAIN_IMAGES, TEST_IMAGES)
    keras = import_keras()
    ds = load_dataset(dataset_name(work), None, image_size=(SIZE, SIZE), channels=3, download=False)
    x = ds.normalization.apply(ds.x_train).astype(np.float32)
    model = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, classes=10, classifier_activation="softmax"
    )
    for layer in model.layers:
        # keras.applications uses momentum 0.999: after a few hundred steps the moving statistics have
        # barely left their initial values and inference would be near chance.
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    log(f"[{NAME}] training MobileNetV2(alpha=0.35) on {len(x)} MNIST digits at 96x96 RGB, {epochs} epoch(s)")
    model.fit(x, ds.y_train, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    x_test = ds.normalization.apply(ds.x_test).astype(np.float32)
    acc = float(np.mean(model.predict(x_test, batch_size=200, verbose=0).argmax(-1) == ds.y_test))
    log(f"[{NAME}] Keras test accuracy {acc:.4f} on {len(x_test)} images")
    run.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    return model_path
