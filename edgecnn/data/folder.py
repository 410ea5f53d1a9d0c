"""Image-folder datasets (`folder:PATH`): one sub-folder of images per class, optionally split into
train/ and test/; otherwise a deterministic share of each class is held out for testing.

Images are decoded by `edgecnn.data.images`, exactly as `edgecnn predict` decodes them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.data.dataset import FOLDER_PREFIX, Dataset
from edgecnn.data.images import IMAGE_KINDS, convert_channels, is_image_file, load_image
from edgecnn.data.normalization import UNIT_SCALE_NORMALIZATION

# A folder dataset without train/ and test/ sub-folders keeps this share of each class for testing.
FOLDER_TEST_FRACTION = 0.2
# (image file, class index)
LabelledFiles = list[tuple[Path, int]]


def _list_class_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _list_images(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if is_image_file(p) and not p.name.startswith("."))


def _load_image_set(
    items: LabelledFiles, size: tuple[int, int] | None, channels: int | None
) -> tuple[np.ndarray, np.ndarray]:
    images = [load_image(p, size, channels) for p, _ in items]
    if channels is None and len({im.shape[-1] for im in images}) > 1:
        # Mixed grey and colour files: promote everything to RGB rather than guess per file.
        images = [convert_channels(im, 3) for im in images]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        listing = ", ".join("x".join(map(str, s)) for s in sorted(shapes)[:4])
        raise EdgecnnError(
            f"images have different sizes ({listing}); pass the model's image size to resize them"
        )
    x = np.stack(images) if images else np.zeros((0, 1, 1, 1), np.uint8)
    y = np.array([label for _, label in items], dtype=np.int64)
    return x, y


def _collect(root: Path, labels: tuple[str, ...], allow_empty: bool = False) -> LabelledFiles:
    items: LabelledFiles = []
    for idx, label in enumerate(labels):
        directory = root / label
        files = _list_images(directory) if directory.is_dir() else []
        if not files and not allow_empty:
            raise EdgecnnError(f"class folder {directory} holds no images ({IMAGE_KINDS})")
        items += [(p, idx) for p in files]
    return items


def _split_items(items: LabelledFiles, fraction: float) -> tuple[LabelledFiles, LabelledFiles]:
    """Deterministic per-class hold-out: the same files land in test on every machine and run."""
    train: LabelledFiles = []
    test: LabelledFiles = []
    by_class: dict[int, list[Path]] = {}
    for p, label in items:
        by_class.setdefault(label, []).append(p)
    for label, paths in sorted(by_class.items()):
        paths = sorted(paths, key=lambda p: hashlib.sha1(p.name.encode(), usedforsecurity=False).hexdigest())
        n_test = int(round(len(paths) * fraction)) if len(paths) > 1 else 0
        test += [(p, label) for p in sorted(paths[:n_test])]
        train += [(p, label) for p in sorted(paths[n_test:])]
    return train, test


def _split_files(
    root: Path, test_fraction: float
) -> tuple[tuple[str, ...], LabelledFiles, LabelledFiles, str]:
    """(class labels, train files, test files, how they were split)."""
    split_dirs = (root / "train", root / "test")
    if not all(d.is_dir() for d in split_dirs):
        labels = tuple(d.name for d in _list_class_dirs(root))
        train_items, test_items = _split_items(_collect(root, labels), test_fraction)
        return labels, train_items, test_items, f"{test_fraction:.0%} of each class held out for testing"
    labels = tuple(d.name for d in _list_class_dirs(split_dirs[0]))
    unknown = sorted({d.name for d in _list_class_dirs(split_dirs[1])} - set(labels))
    if unknown:
        raise EdgecnnError(f"{split_dirs[1]} has classes that {split_dirs[0]} lacks: {', '.join(unknown)}")
    train_items = _collect(split_dirs[0], labels)
    test_items = _collect(split_dirs[1], labels, allow_empty=True)
    return labels, train_items, test_items, "train/ and test/ sub-folders"


def load_folder(
    root: Path, image_size: tuple[int, int] | None, channels: int | None, test_fraction: float
) -> Dataset:
    """The image folder at `root` as a Dataset (images at `image_size`/`channels` when given)."""
    if not root.is_dir():
        raise EdgecnnError(
            f"image folder {root} does not exist "
            f"(folder:PATH needs one sub-folder of images per class: {IMAGE_KINDS})"
        )
    labels, train_items, test_items, how = _split_files(root, test_fraction)
    if len(labels) < 2:
        raise EdgecnnError(f"{root} needs at least two class sub-folders of images, found {len(labels)}")
    x_train, y_train = _load_image_set(train_items, image_size, channels)
    x_test, y_test = _load_image_set(test_items, image_size, channels)
    if channels is None and x_test.shape[0] and x_test.shape[-1] != x_train.shape[-1]:
        # Grey train images and colour test images (or the reverse): RGB for both, as within a set.
        x_train, x_test = convert_channels(x_train, 3), convert_channels(x_test, 3)
    if x_test.shape[0] and x_test.shape[1:] != x_train.shape[1:]:
        raise EdgecnnError(
            f"train and test images differ in size ({x_train.shape[1:]} vs {x_test.shape[1:]}); "
            "pass the model's image size to resize them"
        )
    if x_test.shape[0] == 0:
        x_test = np.zeros((0, *x_train.shape[1:]), np.uint8)
    return Dataset(
        name=f"{FOLDER_PREFIX}{root}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_labels=labels,
        normalization=UNIT_SCALE_NORMALIZATION,
        source=f"{root} ({how})",
        origin="folder",
    )
