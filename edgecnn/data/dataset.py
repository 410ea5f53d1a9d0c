"""What a loaded dataset is: the `Dataset` record, the built-in names and their class labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from edgecnn.core.metadata import Normalization

BUILTIN_NAMES = ("mnist", "fashion_mnist", "cifar10")
# (H, W, C) of each built-in dataset's images: known before a byte is loaded or downloaded.
BUILTIN_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
FOLDER_PREFIX = "folder:"

MNIST_LABELS = tuple(str(i) for i in range(10))
# Official class names, in label order (github.com/zalandoresearch/fashion-mnist, README "Labels").
FASHION_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# Official class names, in label order (batches.meta of the CIFAR-10 python version).
CIFAR10_LABELS = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
BUILTIN_LABELS = {"mnist": MNIST_LABELS, "fashion_mnist": FASHION_LABELS, "cifar10": CIFAR10_LABELS}


@dataclass(frozen=True)
class FileCheck:
    """What was checked about one input file (shown by `edgecnn data info`)."""

    path: str
    size: int
    checksum: str  # "md5 ok (published, uncompressed)", "sha256 ok (cache manifest)", "none published"
    verified: bool


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: uint8 NHWC images, int64 labels, and where and how they were found."""

    name: str  # "mnist" | "fashion_mnist" | "cifar10" | "folder:PATH"
    x_train: np.ndarray  # uint8, (N, H, W, C); read-only when shared from the in-process cache
    y_train: np.ndarray  # int64, (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    class_labels: tuple[str, ...]
    normalization: Normalization
    source: str  # where the files came from
    origin: str = "data_dir"  # data_dir | env | cache | download | folder
    files: tuple[FileCheck, ...] = ()
    split: dict[str, Any] | None = None  # folder datasets: how train/test were split (FolderSplit.to_dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        h, w, c = self.x_train.shape[1:]
        return (int(h), int(w), int(c))

    @property
    def num_classes(self) -> int:
        return len(self.class_labels)

    @property
    def checksums_verified(self) -> bool:
        return bool(self.files) and all(f.verified for f in self.files)


# The file identity the format readers' in-process caches key on: (resolved path, size, mtime) per file,
# so an edited or replaced file is read again.
FileKey = tuple[tuple[str, int, int], ...]


class LoadedArrays(NamedTuple):
    """What a file-format reader hands back: read-only arrays, file checks and the normalization."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checks: tuple[FileCheck, ...]
    normalization: Normalization


def readonly(a: np.ndarray) -> np.ndarray:
    # Arrays are shared between callers through the in-process cache; nobody may edit them in place.
    a.flags.writeable = False
    return a
