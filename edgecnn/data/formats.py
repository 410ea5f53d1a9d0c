"""The file formats datasets are found in: how each is recognized in a folder, what it holds, how a
download is written in it. Adding a format is a reader module (like `idx`, `cifar`, `keras_npz`) and
one `FileFormat` entry here; a `DatasetSpec` then names it in `formats`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.data.cifar import expected_cifar_files, find_cifar
from edgecnn.data.dataset import DatasetSpec, LoadedArrays
from edgecnn.data.idx import encode_idx, expected_idx_files, find_idx
from edgecnn.data.keras_npz import encode_npz, expected_npz_file, find_npz

Loader = Callable[[], LoadedArrays]


@dataclass(frozen=True)
class FileFormat:
    name: str
    # A loader for the dataset's files in a folder (loading is deferred: finding is cheap); None when the
    # folder holds none of them; an EdgecnnError when it holds only some (the user meant that folder).
    find: Callable[[DatasetSpec, Path], Loader | None]
    expected_files: Callable[[DatasetSpec], str]  # the files, in words, for "not found" messages
    # The files downloaded arrays (x_train, y_train, x_test, y_test) are written as; None: not writable.
    encode: Callable[[DatasetSpec, Mapping[str, np.ndarray]], dict[str, bytes]] | None = None


FORMATS: dict[str, FileFormat] = {
    "idx": FileFormat("idx", find_idx, expected_idx_files, encode_idx),
    "cifar-python": FileFormat("cifar-python", find_cifar, expected_cifar_files),
    "npz": FileFormat("npz", find_npz, expected_npz_file, encode_npz),
}
