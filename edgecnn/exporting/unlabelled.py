"""Images an export uses when it has no labelled data for the model: `--calibration-data` (a dataset
name or a folder of unlabelled images, fitted to the model input through `edgecnn.data.images`) and,
without it, seeded random pixels for the parity gate. Neither gives an accuracy: agreement only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.data.dataset_registry import dataset_names

# Random images are enough to prove the graph computes what Keras computes; more only costs time on
# large models (224x224x3 ResNet50).
RANDOM_IMAGES = 128
RANDOM_SEED = 0
CALIBRATION_HINT = (
    "INT8 needs calibration images: pass --calibration-data with a dataset name or a folder of images "
    "like the ones the model will see (labels not needed), or leave int8 out of --quantize"
)

# Export never guesses the dataset from the input shape (a 28x28x1 10-class model may be anything grey):
# without train.json or --dataset it says how to get accuracy measured instead.
MEASURE_ACCURACY_HINT = (
    f"to measure accuracy, pass --dataset NAME ({', '.join(dataset_names())}) or --dataset folder:DIR "
    "with the model's own labelled test images"
)


def random_images(input_shape: tuple[int, int, int], count: int = RANDOM_IMAGES) -> np.ndarray:
    """Seeded uniform uint8 pixels, (count, H, W, C): the same images on every run."""
    rng = np.random.default_rng(RANDOM_SEED)
    return rng.integers(0, 256, size=(count, *input_shape), dtype=np.uint8)


def load_calibration_images(
    source: str, input_shape: tuple[int, int, int], data_dir: Path | None, count: int, seed: int
) -> tuple[np.ndarray, str]:
    """Up to `count` uint8 (N, H, W, C) images fitted to the model input, drawn (seeded) from a folder
    or a dataset's training split, and a description of where they came from. Only the drawn images
    are decoded and resized."""
    from edgecnn.data.images import convert_images, expand_inputs, load_image
    from edgecnn.exporting.quantization.calibration import select_calibration_images

    h, w, c = input_shape
    path = Path(source)
    if path.is_dir():
        files = expand_inputs([path])  # refuses a folder without images
        picked = select_calibration_images(np.asarray(files, dtype=object), count, seed)
        images = np.stack([load_image(Path(f), (h, w), c) for f in picked])
        return images, f"{len(images)} images from folder {source}"
    if path.exists():
        raise EdgecnnError(f"--calibration-data {source} is a file; pass a folder of images or a dataset")
    from edgecnn.data import load_dataset

    data = load_dataset(source, data_dir, download=False)
    picked = select_calibration_images(np.asarray(data.x_train), count, seed)
    images = convert_images(picked, (h, w), c)
    return images, f"{len(images)} training images of dataset {data.name}"
